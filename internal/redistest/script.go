package redistest

import (
	"fmt"
	"strconv"
	"strings"
)

// Mode says how the two replies to a script line are compared.
type Mode int

// The comparison modes, chosen by a line's modifier.
const (
	// Exact compares the raw bytes (no modifier).
	Exact Mode = iota
	// Sort compares aggregates after sorting their elements (a map's
	// key/value pairs): !sort, for KEYS, SMEMBERS, CONFIG GET in RESP3, ...
	Sort
	// SortPairs compares aggregates after sorting consecutive pairs of
	// elements: !sortpairs, for RESP2 flattened maps (CONFIG GET a*).
	SortPairs
	// Shape compares only the type of the reply, and for aggregates the
	// number and shapes of the elements: !type, for TIME, CLIENT ID, ...
	Shape
	// Skip sends the line without comparing the replies: !skip.
	Skip
	// Approx accepts integers (and doubles) that differ by at most the
	// tolerance, anywhere in the reply; everything else must be equal:
	// !approx N, for TTL and PTTL.
	Approx
	// Mask compares an aggregate element by element, the elements at the
	// listed indexes (0-based, a map's keys and values counted alike) by
	// shape only and the others exactly: !mask 3,7, for HELLO's version and
	// id, CONFIG GET port's value.
	Mask
	// Scan runs a full SCAN-family iteration on each server, following each
	// server's own cursors, and compares the sets of items returned: !scan.
	Scan
)

func (m Mode) String() string {
	switch m {
	case Exact:
		return "exact"
	case Sort:
		return "!sort"
	case SortPairs:
		return "!sortpairs"
	case Shape:
		return "!type"
	case Skip:
		return "!skip"
	case Approx:
		return "!approx"
	case Scan:
		return "!scan"
	case Mask:
		return "!mask"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Step is one command line of a script.
type Step struct {
	Line      int      // 1-based line number in the script
	Text      string   // the line as written, without surrounding blanks
	Args      []string // the command; for a raw step, the parts of the bytes to send
	Mode      Mode     // how the replies are compared
	Tolerance int64    // for Approx
	Mask      []int    // for Mask: indexes of the elements compared by shape
	Conn      int      // which connection to each server (!conn N); 0 by default
	Raw       bool     // !raw: send Args joined as they are instead of a multibulk
	Closed    bool     // !closed: the server must close the connection after replying
	Read      bool     // !read: send nothing, read the next reply (pub/sub messages, the rest of a SUBSCRIBE's replies)
}

// Payload returns the bytes the step sends.
func (s *Step) Payload() []byte {
	if s.Read {
		return nil
	}
	if s.Raw {
		return []byte(strings.Join(s.Args, ""))
	}
	return EncodeCommand(s.Args...)
}

// IsQuit reports whether the step is a QUIT command, after which the
// server closes the connection.
func (s *Step) IsQuit() bool {
	return !s.Raw && len(s.Args) > 0 && strings.EqualFold(s.Args[0], "quit")
}

// maxConns bounds !conn N, to catch typos.
const maxConns = 16

// ParseScript parses a differential test script: one command a line, in
// redis-cli's quoting, optionally preceded by modifiers; blank lines and
// lines whose first non-blank character is # are ignored. See
// server/testdata/diff/README.md.
func ParseScript(script string) ([]Step, error) {
	var steps []Step
	for i, line := range strings.Split(script, "\n") {
		text := strings.TrimSpace(line)
		if text == "" || text[0] == '#' {
			continue
		}
		st := Step{Line: i + 1, Text: text}
		if err := st.parse(text); err != nil {
			return nil, fmt.Errorf("line %d: %w: %s", i+1, err, text)
		}
		steps = append(steps, st)
	}
	return steps, nil
}

func (s *Step) parse(text string) error {
	rest := text
	modeSet := false
	setMode := func(m Mode) error {
		if modeSet {
			return fmt.Errorf("more than one comparison modifier")
		}
		modeSet = true
		s.Mode = m
		return nil
	}
	for strings.HasPrefix(rest, "!") {
		var word string
		word, rest = nextWord(rest)
		var err error
		switch word {
		case "!sort":
			err = setMode(Sort)
		case "!sortpairs":
			err = setMode(SortPairs)
		case "!type":
			err = setMode(Shape)
		case "!skip":
			err = setMode(Skip)
		case "!scan":
			err = setMode(Scan)
		case "!approx":
			if err = setMode(Approx); err != nil {
				break
			}
			var n string
			n, rest = nextWord(rest)
			s.Tolerance, err = strconv.ParseInt(n, 10, 64)
			if err != nil || s.Tolerance < 0 {
				err = fmt.Errorf("!approx needs a non-negative integer tolerance, not %q", n)
			}
		case "!mask":
			if err = setMode(Mask); err != nil {
				break
			}
			var list string
			list, rest = nextWord(rest)
			for _, f := range strings.Split(list, ",") {
				i, perr := strconv.Atoi(f)
				if perr != nil || i < 0 {
					err = fmt.Errorf("!mask needs comma-separated element indexes, not %q", list)
					break
				}
				s.Mask = append(s.Mask, i)
			}
		case "!conn":
			var n string
			n, rest = nextWord(rest)
			s.Conn, err = strconv.Atoi(n)
			if err != nil || s.Conn < 0 || s.Conn >= maxConns {
				err = fmt.Errorf("!conn needs a connection number 0..%d, not %q", maxConns-1, n)
			}
		case "!raw":
			s.Raw = true
		case "!closed":
			s.Closed = true
		case "!read":
			s.Read = true
		default:
			err = fmt.Errorf("unknown modifier %q", word)
		}
		if err != nil {
			return err
		}
	}
	args, err := SplitArgs(rest)
	if err != nil {
		return err
	}
	if s.Read {
		if len(args) != 0 || s.Raw || s.Mode == Scan {
			return fmt.Errorf("!read takes no command and no !raw or !scan")
		}
		return nil
	}
	if len(args) == 0 {
		return fmt.Errorf("modifiers without a command")
	}
	s.Args = args
	if s.Mode == Scan {
		if s.Raw {
			return fmt.Errorf("!scan cannot be combined with !raw")
		}
		if cursorIndex(args) >= len(args) {
			return fmt.Errorf("!scan needs a SCAN, SSCAN, HSCAN or ZSCAN command with a cursor")
		}
	}
	return nil
}

// cursorIndex returns the index of the cursor argument of a SCAN-family
// command, or len(args) when it is not one.
func cursorIndex(args []string) int {
	switch strings.ToUpper(args[0]) {
	case "SCAN":
		return 1
	case "SSCAN", "HSCAN", "ZSCAN":
		return 2
	}
	return len(args)
}

// nextWord splits off the first blank-separated word of s.
func nextWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// SplitArgs splits a line into arguments the way redis-cli does
// (sdssplitargs): arguments are separated by blanks; in double quotes \n
// \r \t \b \a \xHH and \<any other byte> are escapes; in single quotes
// only \' is; a closing quote must be followed by a blank or the end.
func SplitArgs(line string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		var cur []byte
		inDouble, inSingle, done := false, false, false
		for !done {
			if inDouble {
				if i == len(line) {
					return nil, fmt.Errorf("unbalanced double quotes")
				}
				c := line[i]
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					v, _ := strconv.ParseUint(line[i+2:i+4], 16, 8)
					cur = append(cur, byte(v))
					i += 4
				case c == '\\' && i+1 < len(line):
					switch e := line[i+1]; e {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, e)
					}
					i += 2
				case c == '"':
					i++
					if i < len(line) && !isBlank(line[i]) {
						return nil, fmt.Errorf("closing quote must be followed by a space")
					}
					done = true
				default:
					cur = append(cur, c)
					i++
				}
			} else if inSingle {
				if i == len(line) {
					return nil, fmt.Errorf("unbalanced single quotes")
				}
				c := line[i]
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					cur = append(cur, '\'')
					i += 2
				case c == '\'':
					i++
					if i < len(line) && !isBlank(line[i]) {
						return nil, fmt.Errorf("closing quote must be followed by a space")
					}
					done = true
				default:
					cur = append(cur, c)
					i++
				}
			} else {
				if i == len(line) {
					break
				}
				switch c := line[i]; {
				case isBlank(c):
					done = true
				case c == '"':
					inDouble = true
				case c == '\'':
					inSingle = true
				default:
					cur = append(cur, c)
				}
				i++
			}
		}
		args = append(args, string(cur))
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0 }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
