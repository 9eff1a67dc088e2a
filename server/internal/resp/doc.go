// Package resp reads and writes the Redis serialization protocol for the
// server: a hardened command Reader that enforces Redis's limits before
// anything is buffered, and a reply Writer for RESP2 and RESP3.
//
// # Reading commands
//
// A Reader parses what clients send, with the semantics of Redis 7's
// processMultibulkBuffer and processInlineBuffer (networking.c):
//
//   - Multibulk requests, "*<count>\r\n" then count times "$<len>\r\n<bytes>\r\n".
//     Counts and lengths are parsed as strictly as Redis's string2ll; a
//     count ≤ 0 is an empty command and is skipped.
//   - Inline requests: any line not starting with '*', split like
//     sdssplitargs ("double quotes" with \n \r \t \b \a \xHH escapes,
//     'single quotes' with \'). A blank line is skipped.
//
// Every limit of Limits is checked as soon as the bytes that break it
// arrive, and the result does not depend on how the input was split across
// reads. Memory follows the bytes received, never a declared count or
// length, so "$536870912\r\n" followed by ten bytes costs a 16 KiB buffer.
// A malformed request yields a *ProtocolError whose message is Redis's; a
// command that outgrows MaxQueryBuf yields ErrQueryBufferLimit. Both are
// final: the server answers (or not) and closes the connection.
//
// Arguments alias the Reader's buffer: they are valid until the next
// ReadCommand, and a command handler that keeps one must copy it. In steady
// state ReadCommand allocates nothing.
//
// # Writing replies
//
// A Writer appends replies to a buffer that the server writes to the
// socket once per pipeline. It starts in RESP2; SetProto(3) after HELLO 3
// switches the types that differ (null, map, set, push, double, boolean,
// verbatim) to their RESP3 forms, with the bytes Redis 7.0 sends. RESP2
// primitives come from github.com/tidwall/redcon's Append functions.
//
// # Caveats
//
//   - Like Redis, the two bytes after a bulk and the byte after a header's
//     '\r' are skipped without checking that they are "\r\n" / '\n'.
//   - Redis searches header and inline lines with strchr, which stops at a
//     NUL byte; so does the Reader: a line with a NUL before its end never
//     ends, and fails as too big once MaxInlineLen bytes are buffered.
//   - Redis checks its query buffer limit on whatever one read brought in;
//     the Reader checks the command being received, so that the outcome is
//     the same however the input is split: a command longer than
//     MaxQueryBuf fails even when it arrives in one piece.
//   - A line longer than MaxInlineLen always fails, where Redis accepts one
//     whose end arrived in the same read that crossed the limit.
//   - Neither type is safe for concurrent use; each belongs to one
//     connection's goroutine.
package resp
