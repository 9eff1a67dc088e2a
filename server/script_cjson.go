package server

// cjson for scripts: encode and decode as Redis's bundled lua-cjson does
// with its default settings (14 significant digits, "/" escaped, empty
// tables as objects, sparse arrays refused, nesting up to 1000).

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

const cjsonMaxDepth = 1000

func openCJSON(L *lua.LState) *lua.LTable {
	null := L.NewUserData() // cjson.null, a lightuserdata NULL in lua-cjson
	t := L.NewTable()
	t.RawSetString("null", null)
	t.RawSetString("encode", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			L.ArgError(1, "expected 1 argument")
		}
		var b strings.Builder
		if msg := cjsonEncode(&b, L.Get(1), null, 0); msg != "" {
			L.Error(lua.LString(luaWhere(L, 1)+msg), 0)
		}
		L.Push(lua.LString(b.String()))
		return 1
	}))
	t.RawSetString("decode", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			L.ArgError(1, "expected 1 argument")
		}
		d := cjsonDecoder{L: L, s: L.CheckString(1), null: null}
		v, msg := d.value(0)
		if msg == "" {
			d.space()
			if d.i < len(d.s) {
				msg = d.fail("the end", d.token())
			}
		}
		if msg != "" {
			L.Error(lua.LString(luaWhere(L, 1)+msg), 0)
		}
		L.Push(v)
		return 1
	}))
	return t
}

// cjsonEncode appends v's JSON to b; it returns lua-cjson's error message,
// or "".
func cjsonEncode(b *strings.Builder, v lua.LValue, null *lua.LUserData, depth int) string {
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case lua.LNumber:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "Cannot serialise number: must not be NaN or Inf"
		}
		b.WriteString(luaNumberString(f))
	case lua.LString:
		cjsonString(b, string(x))
	case *lua.LTable:
		depth++
		if depth > cjsonMaxDepth {
			return "Cannot serialise, excessive nesting (" + strconv.Itoa(depth) + ")"
		}
		n, items, isArray := 0, 0, true
		for k, _ := x.Next(lua.LNil); k != lua.LNil; k, _ = x.Next(k) {
			num, ok := k.(lua.LNumber)
			if !ok || float64(num) < 1 || math.Floor(float64(num)) != float64(num) {
				isArray = false
				break
			}
			n = max(n, int(num))
			items++
		}
		if isArray && n > 0 {
			if n > 10 && n > 2*items {
				return "Cannot serialise table: excessively sparse array"
			}
			b.WriteByte('[')
			for i := 1; i <= n; i++ {
				if i > 1 {
					b.WriteByte(',')
				}
				if msg := cjsonEncode(b, x.RawGetInt(i), null, depth); msg != "" {
					return msg
				}
			}
			b.WriteByte(']')
			return ""
		}
		b.WriteByte('{')
		first := true
		for k, val := x.Next(lua.LNil); k != lua.LNil; k, val = x.Next(k) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			switch key := k.(type) {
			case lua.LString:
				cjsonString(b, string(key))
			case lua.LNumber:
				cjsonString(b, luaNumberString(float64(key)))
			default:
				return "Cannot serialise table: table key must be a number or string"
			}
			b.WriteByte(':')
			if msg := cjsonEncode(b, val, null, depth); msg != "" {
				return msg
			}
		}
		b.WriteByte('}')
	case *lua.LUserData:
		if x == null {
			b.WriteString("null")
			return ""
		}
		return "Cannot serialise userdata: type not supported"
	default:
		return "Cannot serialise " + v.Type().String() + ": type not supported"
	}
	return ""
}

// luaNumberString formats a number as Lua 5.1 does ("%.14g", with glibc's
// inf and nan).
func luaNumberString(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f) && math.Signbit(f):
		return "-nan"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', 14, 64)
}

func cjsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '/':
			b.WriteString(`\/`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if ch < 0x20 || ch == 0x7f {
				const hex = "0123456789abcdef"
				b.WriteString(`\u00`)
				b.WriteByte(hex[ch>>4])
				b.WriteByte(hex[ch&15])
			} else {
				b.WriteByte(ch)
			}
		}
	}
	b.WriteByte('"')
}

type cjsonDecoder struct {
	L    *lua.LState
	s    string
	i    int
	null *lua.LUserData
}

func (d *cjsonDecoder) space() {
	for d.i < len(d.s) && strings.IndexByte(" \t\r\n", d.s[d.i]) >= 0 {
		d.i++
	}
}

// token names what is at d.i for an error message, as lua-cjson does.
func (d *cjsonDecoder) token() string {
	if d.i >= len(d.s) {
		return "T_END"
	}
	switch ch := d.s[d.i]; {
	case ch == '{':
		return "T_OBJ_BEGIN"
	case ch == '}':
		return "T_OBJ_END"
	case ch == '[':
		return "T_ARR_BEGIN"
	case ch == ']':
		return "T_ARR_END"
	case ch == ',':
		return "T_COMMA"
	case ch == ':':
		return "T_COLON"
	case ch == '"':
		return "T_STRING"
	case ch == '-' || ch >= '0' && ch <= '9':
		return "T_NUMBER"
	case strings.HasPrefix(d.s[d.i:], "true"), strings.HasPrefix(d.s[d.i:], "false"):
		return "T_BOOLEAN"
	case strings.HasPrefix(d.s[d.i:], "null"):
		return "T_NULL"
	}
	return "invalid token"
}

func (d *cjsonDecoder) fail(want, found string) string {
	return "Expected " + want + " but found " + found + " at character " + strconv.Itoa(d.i+1)
}

func (d *cjsonDecoder) value(depth int) (lua.LValue, string) {
	d.space()
	if d.i >= len(d.s) {
		return lua.LNil, d.fail("value", "T_END")
	}
	rest := d.s[d.i:]
	switch ch := rest[0]; {
	case ch == '{':
		return d.object(depth + 1)
	case ch == '[':
		return d.array(depth + 1)
	case ch == '"':
		s, msg := d.str()
		return lua.LString(s), msg
	case ch == '-' || ch >= '0' && ch <= '9':
		j := d.i + 1
		for j < len(d.s) && strings.IndexByte("0123456789+-.eExX", d.s[j]) >= 0 {
			j++
		}
		f, err := parseLuaNumber(d.s[d.i:j])
		if err != nil {
			return lua.LNil, d.fail("value", "invalid number")
		}
		d.i = j
		return lua.LNumber(f), ""
	case strings.HasPrefix(rest, "true"):
		d.i += 4
		return lua.LTrue, ""
	case strings.HasPrefix(rest, "false"):
		d.i += 5
		return lua.LFalse, ""
	case strings.HasPrefix(rest, "null"):
		d.i += 4
		return d.null, ""
	}
	return lua.LNil, d.fail("value", d.token())
}

func (d *cjsonDecoder) nested(depth int) string {
	if depth > cjsonMaxDepth {
		return "Found too many nested data structures (" + strconv.Itoa(depth) + ") at character " + strconv.Itoa(d.i+1)
	}
	return ""
}

func (d *cjsonDecoder) object(depth int) (lua.LValue, string) {
	return d.container(depth, '}', "comma or object end", func(t *lua.LTable) string {
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return d.fail("object key string", d.token())
		}
		k, msg := d.str()
		if msg != "" {
			return msg
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return d.fail("colon", d.token())
		}
		d.i++
		v, msg := d.value(depth)
		if msg != "" {
			return msg
		}
		t.RawSetString(k, v)
		return ""
	})
}

func (d *cjsonDecoder) array(depth int) (lua.LValue, string) {
	n := 0
	return d.container(depth, ']', "comma or array end", func(t *lua.LTable) string {
		v, msg := d.value(depth)
		if msg != "" {
			return msg
		}
		n++
		t.RawSetInt(n, v)
		return ""
	})
}

// container reads an object or an array, from its opening bracket at d.i
// to its closing one, end: member reads one member into t (returning an
// error message, or ""); a comma or end must follow each, else the error
// says that want was expected.
func (d *cjsonDecoder) container(depth int, end byte, want string, member func(t *lua.LTable) string) (lua.LValue, string) {
	if msg := d.nested(depth); msg != "" {
		return lua.LNil, msg
	}
	d.i++ // { or [
	t := d.L.NewTable()
	d.space()
	if d.i < len(d.s) && d.s[d.i] == end {
		d.i++
		return t, ""
	}
	for {
		if msg := member(t); msg != "" {
			return lua.LNil, msg
		}
		d.space()
		if d.i < len(d.s) && d.s[d.i] == end {
			d.i++
			return t, ""
		}
		if d.i >= len(d.s) || d.s[d.i] != ',' {
			return lua.LNil, d.fail(want, d.token())
		}
		d.i++
	}
}

// str reads a JSON string at d.i (its opening quote).
func (d *cjsonDecoder) str() (string, string) {
	start := d.i
	d.i++
	var b []byte
	for d.i < len(d.s) {
		ch := d.s[d.i]
		switch {
		case ch == '"':
			d.i++
			return string(b), ""
		case ch == '\\':
			if d.i+1 >= len(d.s) {
				d.i = start
				return "", d.fail("value", "invalid token")
			}
			esc := d.s[d.i+1]
			d.i += 2
			switch esc {
			case '"', '\\', '/':
				b = append(b, esc)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					d.i = start
					return "", d.fail("value", "invalid unicode escape code")
				}
				if utf16.IsSurrogate(r) {
					if strings.HasPrefix(d.s[d.i:], `\u`) {
						d.i += 2
						lo, ok := d.hex4()
						if !ok {
							d.i = start
							return "", d.fail("value", "invalid unicode escape code")
						}
						r = utf16.DecodeRune(r, lo)
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				d.i = start
				return "", d.fail("value", "invalid escape code")
			}
		default:
			b = append(b, ch)
			d.i++
		}
	}
	d.i = start
	return "", d.fail("value", "unexpected end of string")
}

func (d *cjsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(d.s[d.i:d.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}
