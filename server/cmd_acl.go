package server

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
)

func (s *Server) aclCommands() []*command {
	sub := func(name string, arity int, flags cmdFlags, summary string, run handler) *command {
		return &command{name: name, arity: arity, flags: flags | flagLoading | flagStale, summary: summary, run: run}
	}
	const adm, ns = flagAdmin | flagNoScript, flagNoScript
	dryrun := sub("dryrun", -4, adm, "Returns whether the user can execute the given command without executing the command.", s.cmdACLDryRun)
	dryrun.since = "7.0.0"
	return []*command{{
		name: "acl", arity: -2, group: "server", since: "6.0.0",
		summary: "A container for Access List Control commands.",
		subs: map[string]*command{
			"cat":     sub("cat", -2, ns, "Lists the ACL categories, or the commands inside a category.", s.cmdACLCat),
			"deluser": sub("deluser", -3, adm, "Deletes ACL users, and terminates their connections.", s.cmdACLDelUser),
			"dryrun":  dryrun,
			"genpass": sub("genpass", -2, ns, "Generates a pseudorandom, secure password that can be used to identify ACL users.", s.cmdACLGenPass),
			"getuser": sub("getuser", 3, adm, "Lists the ACL rules of a user.", s.cmdACLGetUser),
			"help":    sub("help", 2, 0, "Returns helpful text about the different subcommands.", s.cmdACLHelp),
			"list":    sub("list", 2, adm, "Dumps the effective rules in ACL file format.", s.cmdACLList),
			"load":    sub("load", 2, adm, "Reloads the rules from the configured ACL file.", s.cmdACLLoad),
			"log":     sub("log", -2, adm, "Lists recent security events generated due to ACL rules.", s.cmdACLLog),
			"save":    sub("save", 2, adm, "Saves the effective ACL rules in the configured ACL file.", s.cmdACLSave),
			"setuser": sub("setuser", -3, adm, "Creates and modifies an ACL user and its rules.", s.cmdACLSetUser),
			"users":   sub("users", 2, adm, "Lists all ACL users.", s.cmdACLUsers),
			"whoami":  sub("whoami", 2, ns, "Returns the authenticated username of the current connection.", s.cmdACLWhoAmI),
		},
	}}
}

// aclSyntaxError is Redis's reply to an ACL subcommand with arguments it
// does not take.
func aclSyntaxError(c *client, args [][]byte) {
	c.w.Error("ERR unknown subcommand or wrong number of arguments for '" + truncate(sanitize(string(args[1])), 128) +
		"'. Try " + strings.ToUpper(sanitize(string(args[0]))) + " HELP.")
}

func (s *Server) cmdACLSetUser(c *client, args [][]byte) {
	name := string(args[2])
	if hasSpace(name) {
		c.w.Error("ERR Usernames can't contain spaces or null characters")
		return
	}
	ops := make([]string, len(args)-3)
	for i, a := range args[3:] {
		ops[i] = string(a)
	}
	u, before, after, err := s.acl.setUser(name, ops)
	if err != nil {
		c.w.Error("ERR " + sanitize(err.Error()))
		return
	}
	if before != nil {
		s.disconnectRevokedSubscribers(c, u, after)
	}
	c.w.OK()
}

func (s *Server) cmdACLDelUser(c *client, args [][]byte) {
	names := make([]string, 0, len(args)-2)
	for _, a := range args[2:] {
		if string(a) == "default" {
			c.w.Error("ERR The 'default' user cannot be removed")
			return
		}
		names = append(names, string(a))
	}
	gone := s.acl.deleteUsers(names)
	s.disconnectUsers(c, gone)
	c.w.Int(int64(len(gone)))
}

func (s *Server) cmdACLGetUser(c *client, args [][]byte) {
	u := s.acl.user(string(args[2]))
	if u == nil {
		c.w.Null()
		return
	}
	r := u.rules.Load()
	t := s.acl.table
	selector := func(sel *aclSelector) {
		c.w.BulkString("commands")
		c.w.BulkString(sel.describeCommands(t))
		c.w.BulkString("keys")
		c.w.BulkString(sel.describeKeys())
		c.w.BulkString("channels")
		c.w.BulkString(sel.describeChannels())
	}
	c.w.Map(6)
	c.w.BulkString("flags")
	flags := r.flags.names()
	c.w.Set(len(flags))
	for _, f := range flags {
		c.w.BulkString(f)
	}
	c.w.BulkString("passwords")
	c.w.Array(len(r.passwords))
	for _, p := range r.passwords {
		c.w.BulkString(hex.EncodeToString(p[:]))
	}
	selector(r.root())
	c.w.BulkString("selectors")
	c.w.Array(len(r.selectors) - 1)
	for _, sel := range r.selectors[1:] {
		c.w.Map(3)
		selector(sel)
	}
}

func (s *Server) cmdACLList(c *client, _ [][]byte) {
	users := s.acl.sortedUsers()
	c.w.Array(len(users))
	for _, u := range users {
		c.w.BulkString("user " + u.name + " " + u.rules.Load().describe(s.acl.table))
	}
}

func (s *Server) cmdACLUsers(c *client, _ [][]byte) {
	users := s.acl.sortedUsers()
	c.w.Array(len(users))
	for _, u := range users {
		c.w.BulkString(u.name)
	}
}

func (s *Server) cmdACLWhoAmI(c *client, _ [][]byte) { c.w.BulkString(c.user.name) }

func (s *Server) cmdACLCat(c *client, args [][]byte) {
	switch len(args) {
	case 2:
		names := aclCategoryNames()
		c.w.Array(len(names))
		for _, n := range names {
			c.w.BulkString(n)
		}
	case 3:
		cat, ok := aclCategoryByName(string(args[2]))
		if !ok {
			c.w.Error("ERR Unknown category '" + truncate(sanitize(cstr(string(args[2]))), 128) + "'")
			return
		}
		t := s.acl.table
		var names []string
		for id, cmd := range t.cmds {
			if t.cats[id]&cat != 0 {
				names = append(names, cmd.name)
			}
		}
		c.w.Array(len(names))
		for _, n := range names {
			c.w.BulkString(n)
		}
	default:
		aclSyntaxError(c, args)
	}
}

func (s *Server) cmdACLGenPass(c *client, args [][]byte) {
	bits := int64(256)
	switch len(args) {
	case 2:
	case 3:
		n, ok := parseInt(args[2])
		if !ok {
			c.w.Error(errNotInt)
			return
		}
		bits = n
	default:
		aclSyntaxError(c, args)
		return
	}
	if bits <= 0 || bits > 4096 {
		c.w.Error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
		return
	}
	c.w.BulkString(genPass(int(bits+3) / 4))
}

func (s *Server) cmdACLLog(c *client, args [][]byte) {
	count := 10
	switch len(args) {
	case 2:
	case 3:
		if strings.EqualFold(string(args[2]), "reset") {
			s.acl.log.reset()
			c.w.OK()
			return
		}
		n, ok := parseInt(args[2])
		if !ok {
			c.w.Error(errNotInt)
			return
		}
		count = int(max(0, min(n, 1<<31)))
	default:
		aclSyntaxError(c, args)
		return
	}
	entries := s.acl.log.newest(count)
	now := time.Now()
	c.w.Array(len(entries))
	for _, e := range entries {
		c.w.Map(7)
		c.w.BulkString("count")
		c.w.Int(e.count)
		c.w.BulkString("reason")
		c.w.BulkString(e.reason.String())
		c.w.BulkString("context")
		c.w.BulkString(e.context)
		c.w.BulkString("object")
		c.w.BulkString(e.object)
		c.w.BulkString("username")
		c.w.BulkString(e.username)
		c.w.BulkString("age-seconds")
		c.w.Double(float64(now.Sub(e.ctime).Milliseconds()) / 1000)
		c.w.BulkString("client-info")
		c.w.BulkString(e.cinfo)
	}
}

func (s *Server) cmdACLDryRun(c *client, args [][]byte) {
	u := s.acl.user(string(args[2]))
	if u == nil {
		c.w.Error("ERR User '" + sanitize(cstr(string(args[2]))) + "' not found")
		return
	}
	cargs := args[3:]
	cmd := s.cmds[strings.ToLower(string(cargs[0]))]
	if cmd != nil && cmd.subs != nil && len(cargs) >= 2 {
		cmd = cmd.subs[strings.ToLower(string(cargs[1]))]
	}
	if cmd == nil {
		c.w.Error("ERR Command '" + sanitize(cstr(string(cargs[0]))) + "' not found")
		return
	}
	if !cmd.arityOK(len(cargs)) {
		c.w.Error(wrongArgs(cmd.name))
		return
	}
	d, pos := u.rules.Load().check(s.acl.table, cmd, cargs)
	switch d {
	case aclOK:
		c.w.OK()
	case aclDeniedKey:
		c.w.BulkString("This user has no permissions to access the '" + cstr(string(cargs[pos])) + "' key")
	case aclDeniedChannel:
		c.w.BulkString("This user has no permissions to access the '" + cstr(string(cargs[pos])) + "' channel")
	default:
		c.w.BulkString("This user has no permissions to run the '" + cmd.name + "' command")
	}
}

const errNoACLFile = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."

func (s *Server) cmdACLLoad(c *client, _ [][]byte) {
	if s.acl.file == "" {
		c.w.Error(errNoACLFile)
		return
	}
	replaced, err := s.acl.loadFile(s.conf.requirePass())
	if err != nil {
		c.w.Error("ERR " + sanitize(err.Error()))
		return
	}
	s.log.Info("ACL file loaded", "file", s.acl.file, "by", c.addr)
	s.disconnectUsers(c, replaced)
	c.w.OK()
}

func (s *Server) cmdACLSave(c *client, _ [][]byte) {
	if s.acl.file == "" {
		c.w.Error(errNoACLFile)
		return
	}
	if err := s.acl.saveFile(); err != nil {
		s.log.Warn("ACL SAVE failed", "file", s.acl.file, "err", err)
		c.w.Error("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
		return
	}
	c.w.OK()
}

func (s *Server) cmdACLHelp(c *client, _ [][]byte) {
	c.helpReply([]string{
		"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"CAT [<category>]",
		"    List all commands that belong to <category>, or all command categories",
		"    when no category is specified.",
		"DELUSER <username> [<username> ...]",
		"    Delete a list of users.",
		"DRYRUN <username> <command> [<arg> ...]",
		"    Returns whether the user can execute the given command without executing the command.",
		"GETUSER <username>",
		"    Get the user's details.",
		"GENPASS [<bits>]",
		"    Generate a secure 256-bit user password. The optional `bits` argument can",
		"    be used to specify a different size.",
		"LIST",
		"    Show users details in config file format.",
		"LOAD",
		"    Reload users from the ACL file.",
		"LOG [<count> | RESET]",
		"    Show the ACL log entries.",
		"SAVE",
		"    Save the current config to the ACL file.",
		"SETUSER <username> <attribute> [<attribute> ...]",
		"    Create or modify a user with the specified attributes.",
		"USERS",
		"    List all the registered usernames.",
		"WHOAMI",
		"    Return the current connection username.",
		"HELP",
		"    Prints this help.",
	})
}

// aclSettings registers the ACL's CONFIG parameters: acllog-max-len, and
// aclfile (read-only).
func (s *Server) aclSettings() {
	s.conf.add(&param{name: "acllog-max-len",
		get: func() string { return strconv.FormatInt(s.acl.log.maxLen.Load(), 10) },
		set: func(v string) error {
			n, err := parseIntParam(v, 0, math.MaxInt64)
			if err != nil {
				return err
			}
			s.acl.log.maxLen.Store(n)
			return nil
		}})
	s.conf.add(&param{name: "aclfile", get: func() string { return s.acl.file }})
}
