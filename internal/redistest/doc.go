// Package redistest is test support for comparing sessiond with a real
// Redis, byte for byte.
//
// It has four parts:
//
//   - StartRedis runs a throw-away redis-server on a free loopback port for
//     the duration of a test (the test is skipped where redis-server is not
//     installed).
//   - Conn is a raw RESP client: Do writes one command and returns the exact
//     bytes of the reply. ReadReply and ParseReply understand every RESP2
//     and RESP3 frame, so they know where a reply ends without interpreting
//     it.
//   - RunScript plays a differential test script (see ParseScript and
//     server/testdata/diff/README.md) against two servers and reports every
//     reply on which they disagree.
//   - NewCA makes up a certificate authority whose Issue signs the server
//     and client certificates of TLS tests.
//
// Everything here is meant to be called from the test's own goroutine: the
// helpers fail the test through testify's require, which stops it with
// FailNow.
package redistest
