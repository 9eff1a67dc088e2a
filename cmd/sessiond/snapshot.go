package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/sessiond/sessiond/persist"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/ttl"
)

// The offline tools: sessiond check-snapshot FILE, and sessiond
// export-snapshot [--format resp|json] FILE. Both open the file read-only
// (they fail at once while a server holds it).

// runCheckSnapshot verifies a data file and prints its counts.
func runCheckSnapshot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sessiond check-snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sessiond check-snapshot FILE\n\n"+
			"Verifies a sessiond data file (bbolt structure, every record's checksum, a\n"+
			"replay of its log) and prints its keys per database and type. Exit status 0\n"+
			"when the file is sound, 1 otherwise. The file is not changed.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("check-snapshot: one FILE expected")
	}
	st, err := persist.Check(fs.Arg(0), ttl.Now())
	fmt.Fprintf(stdout, "file: %s\n", st.Path)
	if st.Version > 0 {
		fmt.Fprintf(stdout, "format: sessiond data file, version %d, created %s, %d bytes\n",
			st.Version, st.Created.UTC().Format("2006-01-02 15:04:05 MST"), st.Size)
		fmt.Fprintf(stdout, "snapshot: %d blocks, %d bytes; log: %d blocks, %d bytes\n", st.Blocks[0], st.Bytes[0], st.Blocks[1], st.Bytes[1])
		if st.Segments > 0 {
			fmt.Fprintf(stdout, "log segments beside the file (appendfsync always, not yet folded in): %d, in the log counts above; incomplete writes ignored: %d bytes\n", st.Segments, st.SegmentTail)
		}
		fmt.Fprintf(stdout, "records: %d put, %d delete, %d expire, %d flushdb, %d flushall\n",
			st.Records[persist.OpPut], st.Records[persist.OpDelete], st.Records[persist.OpExpire], st.Records[persist.OpFlushDB], st.Records[persist.OpFlushAll])
		fmt.Fprintf(stdout, "keys: %d live, %d expired (not loaded)\n", st.LiveKeys(), st.Expired)
		dbs := make([]int, 0, len(st.Keys))
		for db := range st.Keys {
			dbs = append(dbs, db)
		}
		slices.Sort(dbs)
		for _, db := range dbs {
			var total int64
			kinds := make([]int, 0, len(st.Keys[db]))
			for k, n := range st.Keys[db] {
				kinds = append(kinds, int(k))
				total += n
			}
			slices.Sort(kinds)
			fmt.Fprintf(stdout, "db%d: keys=%d", db, total)
			for _, k := range kinds {
				fmt.Fprintf(stdout, " %s=%d", kindLabel(uint8(k)), st.Keys[db][uint8(k)])
			}
			fmt.Fprintln(stdout)
		}
	}
	for _, p := range st.Problems {
		fmt.Fprintf(stdout, "problem: %s\n", p)
	}
	if err != nil {
		fmt.Fprintf(stdout, "status: BAD (%v)\n", err)
		return err
	}
	fmt.Fprintln(stdout, "status: OK")
	return nil
}

func kindLabel(k uint8) string {
	if n := server.KindName(k); n != "none" {
		return n
	}
	return "kind" + strconv.Itoa(int(k))
}

// runExportSnapshot writes the live keys of a data file as RESP commands
// (for redis-cli --pipe) or JSON lines.
func runExportSnapshot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sessiond export-snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "resp", "resp: commands for redis-cli --pipe; json: one object per key and line")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sessiond export-snapshot [--format resp|json] FILE\n\n"+
			"Writes the live keys of a sessiond data file to standard output, sorted by\n"+
			"database and key, deadlines as absolute times (keys already expired are left\n"+
			"out). With resp (the default) the output is RESP commands (SELECT, SET … PXAT,\n"+
			"…) to load into Redis or sessiond:\n\n"+
			"  sessiond export-snapshot sessiond.db | redis-cli --pipe\n\n"+
			"With json, each line is {\"db\":0,\"key\":…,\"type\":\"string\",\"value\":…,\"expire_at_ms\":…};\n"+
			"bytes that are not UTF-8 are given base64-encoded in key_base64/value_base64.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("export-snapshot: one FILE expected")
	}
	if *format != "resp" && *format != "json" {
		return fmt.Errorf("export-snapshot: --format must be resp or json")
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	now := ttl.Now()
	db := -1
	var n int64
	err := persist.Export(fs.Arg(0), now, func(r *persist.Record) error {
		n++
		if *format == "json" {
			return writeJSONRecord(w, r, now)
		}
		cmds, err := server.RestoreCommands(r.Kind, r.Value, r.Key, r.Deadline, now)
		if err != nil {
			return fmt.Errorf("key %q of db %d: %w", r.Key, r.DB, err)
		}
		if r.DB != db && len(cmds) > 0 {
			db = r.DB
			writeRESP(w, [][]byte{[]byte("SELECT"), []byte(strconv.Itoa(db))})
		}
		for _, c := range cmds {
			writeRESP(w, c)
		}
		return nil
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err == nil {
		fmt.Fprintf(stderr, "exported %d keys\n", n)
	}
	return err
}

func writeRESP(w *bufio.Writer, args [][]byte) {
	w.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		w.WriteString("$" + strconv.Itoa(len(a)) + "\r\n")
		w.Write(a)
		w.WriteString("\r\n")
	}
}

// jsonRecord is one line of the JSON export.
type jsonRecord struct {
	DB          int             `json:"db"`
	Key         *string         `json:"key,omitempty"`
	KeyBase64   []byte          `json:"key_base64,omitempty"`
	Type        string          `json:"type"`
	Value       *string         `json:"value,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
	Commands    json.RawMessage `json:"commands,omitempty"`
	ExpireAtMs  int64           `json:"expire_at_ms,omitempty"`
}

func writeJSONRecord(w *bufio.Writer, r *persist.Record, now int64) error {
	jr := jsonRecord{DB: r.DB, Type: kindLabel(r.Kind), ExpireAtMs: r.Deadline}
	if utf8.Valid(r.Key) {
		k := string(r.Key)
		jr.Key = &k
	} else {
		jr.KeyBase64 = r.Key
	}
	if server.KindName(r.Kind) == "string" {
		if utf8.Valid(r.Value) {
			v := string(r.Value)
			jr.Value = &v
		} else {
			jr.ValueBase64 = r.Value
		}
	} else {
		// Other kinds: the commands that rebuild them, when the kind can
		// say, and sessiond's own encoding in any case.
		jr.ValueBase64 = r.Value
		if cmds, err := server.RestoreCommands(r.Kind, r.Value, r.Key, r.Deadline, now); err == nil {
			strs := make([][]string, len(cmds))
			for i, c := range cmds {
				for _, a := range c {
					strs[i] = append(strs[i], string(a))
				}
			}
			jr.Commands, _ = json.Marshal(strs)
		}
	}
	b, err := json.Marshal(jr)
	if err != nil {
		return err
	}
	w.Write(b)
	return w.WriteByte('\n')
}
