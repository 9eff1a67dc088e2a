package server

// Error replies, byte for byte as Redis 7 words them: clients match on them.
const (
	errWrongType    = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt       = "ERR value is not an integer or out of range"
	errNotFloat     = "ERR value is not a valid float"
	errSyntax       = "ERR syntax error"
	errNoAuth       = "NOAUTH Authentication required."
	errWrongPass    = "WRONGPASS invalid username-password pair or user is disabled."
	errOverflow     = "ERR increment or decrement would overflow"
	errNoSuchKey    = "ERR no such key"
	errDBIndex      = "ERR DB index is out of range"
	errNotIntOrNeg  = "ERR value is out of range, must be positive"
	errAuthNoPass   = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errNoPerm       = "NOPERM this user has no permissions to run the command"
	errStringTooBig = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errClusterOff   = "ERR This instance has cluster support disabled"
	errNaNInf       = "ERR increment would produce NaN or Infinity"
)

// wrongArgs is the arity error for a command's full name.
func wrongArgs(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}
