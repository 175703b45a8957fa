package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitRefused     = 4
)

// Flag groups a command accepts besides the connection flags.
const (
	fAction = 1 << iota // --reason --reauth --at --actor
	fYes                // --yes
	fAudit              // --limit --before
)

type command struct {
	name    string
	args    string // positional arguments, for usage
	summary string
	flags   int
	nargs   func(n int) bool
	run     func(c *cli, ctx context.Context, args []string) int
}

var commands = []command{
	{"terminate-all", "", "sign out every session (needs --yes or a typed confirmation)", fAction | fYes, exactly(0), (*cli).terminateAll},
	{"terminate-tenant", "<tenant>", "sign out every session of one tenant (workspace)", fAction, exactly(1), (*cli).terminateTenant},
	{"terminate-user", "<issuer> <sub>", "sign out one user on every device", fAction, exactly(2), (*cli).terminateUser},
	{"terminate-session", "<session-id>", "sign out one session", fAction, exactly(1), (*cli).terminateSession},
	{"cancel", "<scope>", "withdraw an announced termination before its time", fAction, atLeast(1), (*cli).cancel},
	{"reload", "<scope>", "make sessions re-read claims and permissions (signs nobody out)", fAction, atLeast(1), (*cli).reload},
	{"status", "[<scope>...]", "show the store epoch and fences (global, plus each scope given)", 0, atLeast(0), (*cli).status},
	{"audit", "", "show the newest audit entries", fAudit, exactly(0), (*cli).audit},
	{"sessions", "<issuer> <sub>", "list one user's live sessions", 0, exactly(2), (*cli).sessions},
}

func exactly(n int) func(int) bool { return func(m int) bool { return m == n } }
func atLeast(n int) func(int) bool { return func(m int) bool { return m >= n } }

const scopeHelp = `A <scope> is one of:
  global
  tenant <tenant>
  user <issuer> <sub>          (also: subject)
  idp-session <issuer> <sid>   (also: idp_session)
  session <session-id>
or one word in the form the audit log and the admin API print:
  tenant:acme  subject:<issuer>|<sub>  idp_session:<issuer>|<sid>  session:<id>`

// cli holds one invocation's streams, flags and, once connected, store.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string

	addr, prefix, username string
	useTLS, allowEviction  bool
	timeout                time.Duration
	asJSON, verbose        bool

	reason, reauth, at, actor string
	yes                       bool
	limit                     int
	before                    string

	policy middleware.Policy
	when   time.Time

	store  *valkeystore.Store
	client valkey.Client // closed by run; the store does not own it
	admin  *admin.Service
}

// run executes the CLI with args (without the program name) and returns
// the exit code. It never calls os.Exit, so tests run it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	if len(args) == 0 {
		c.usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		c.usage(stdout)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "sessionfence: unknown command %q\n\n", args[0])
		c.usage(stderr)
		return exitUsage
	}
	fs := c.flags(cmd)
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage // the flag package printed the error and usage
	}
	if !cmd.nargs(len(pos)) {
		fmt.Fprintf(stderr, "sessionfence %s: wrong number of arguments\n", cmd.name)
		fs.Usage()
		return exitUsage
	}
	if code := c.validate(cmd); code != exitOK {
		return code
	}
	// A refused confirmation must not even connect.
	if cmd.name == "terminate-all" && !c.confirmed() {
		return exitRefused
	}
	// Scopes are parsed before connecting, so a typo never waits on the
	// network.
	if cmd.name == "cancel" || cmd.name == "reload" || cmd.name == "status" {
		if _, err := parseScopes(pos); err != nil {
			fmt.Fprintf(stderr, "sessionfence %s: %v\n\n%s\n", cmd.name, err, scopeHelp)
			return exitUsage
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if code := c.connect(); code != exitOK {
		return code
	}
	defer c.client.Close()
	defer c.store.Close()
	return cmd.run(c, ctx, pos)
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: sessionfence <command> [flags] [arguments]")
	fmt.Fprintln(w, "\nCommands:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, cmd := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", cmd.name, cmd.args, cmd.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\n"+scopeHelp)
	fmt.Fprintln(w, `
Store: --addr or SESSIONFENCE_VALKEY_ADDR (default 127.0.0.1:6379), --prefix or
SESSIONFENCE_PREFIX (default "{sessionfence}:"), password in
SESSIONFENCE_VALKEY_PASSWORD. "sessionfence <command> -h" lists a command's flags.

Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 store unavailable,
4 refused (not confirmed).`)
}

func (c *cli) flags(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("sessionfence "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: sessionfence %s [flags] %s\n  %s\n", cmd.name, cmd.args, cmd.summary)
		if strings.Contains(cmd.args, "scope") {
			fmt.Fprintln(c.stderr, scopeHelp)
		}
		fmt.Fprintln(c.stderr, "Flags:")
		fs.PrintDefaults()
	}
	addr := c.env("SESSIONFENCE_VALKEY_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	prefix := c.env("SESSIONFENCE_PREFIX")
	if prefix == "" {
		prefix = valkeystore.DefaultPrefix
	}
	fs.StringVar(&c.addr, "addr", addr, "Valkey/Redis `host:port` (comma-separated seeds); env SESSIONFENCE_VALKEY_ADDR")
	fs.StringVar(&c.prefix, "prefix", prefix, "key prefix of the application's store; env SESSIONFENCE_PREFIX")
	fs.StringVar(&c.username, "username", c.env("SESSIONFENCE_VALKEY_USERNAME"), "ACL user name; env SESSIONFENCE_VALKEY_USERNAME (password: env SESSIONFENCE_VALKEY_PASSWORD)")
	fs.BoolVar(&c.useTLS, "tls", false, "connect with TLS")
	fs.BoolVar(&c.allowEviction, "insecure-allow-eviction", false, "accept a server whose maxmemory-policy may evict fences (as the application's InsecureAllowEviction)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound for the whole command")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of text")
	fs.BoolVar(&c.verbose, "verbose", false, "log the library's structured records to stderr")
	if cmd.flags&fAction != 0 {
		fs.StringVar(&c.reason, "reason", "", "why (kept in the audit log; shown to users for announcements)")
		user := c.env("USER")
		if user == "" {
			user = c.env("LOGNAME")
		}
		if user == "" {
			user = "unknown"
		}
		fs.StringVar(&c.actor, "actor", "cli:"+user, "who acts, for the audit log")
		if cmd.name != "cancel" && cmd.name != "reload" {
			fs.StringVar(&c.reauth, "reauth", "none", "what the next login must prove: none, login (fresh authentication) or mfa")
			fs.StringVar(&c.at, "at", "", "announce for a later time instead of acting now: RFC 3339 (2026-11-23T18:00:00Z) or +duration (+15m)")
		}
	}
	if cmd.flags&fYes != 0 {
		fs.BoolVar(&c.yes, "yes", false, "confirm terminate-all without the interactive prompt")
	}
	if cmd.flags&fAudit != 0 {
		fs.IntVar(&c.limit, "limit", 20, "number of entries, 1 to 500")
		fs.StringVar(&c.before, "before", "", "page cursor: show entries older than this entry id")
	}
	return fs
}

// parseInterleaved parses flags wherever they appear among the positional
// arguments ("terminate-user iss sub --reason x"), which the flag package
// alone does not; "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func (c *cli) validate(cmd *command) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "sessionfence %s: "+format+"\n", append([]any{cmd.name}, a...)...)
		return exitUsage
	}
	if c.timeout <= 0 {
		return fail("--timeout must be positive")
	}
	if cmd.flags&fAction != 0 {
		if strings.TrimSpace(c.actor) == "" {
			return fail("--actor must not be empty")
		}
		if c.reauth != "" {
			p, ok := middleware.ParsePolicy(c.reauth)
			if !ok {
				return fail("--reauth must be none, login or mfa, not %q", c.reauth)
			}
			c.policy = p
		}
		if c.at != "" {
			t, err := parseAt(c.at, time.Now())
			if err != nil {
				return fail("%v", err)
			}
			c.when = t
		}
	}
	if cmd.flags&fAudit != 0 && (c.limit < 1 || c.limit > 500) {
		return fail("--limit must be from 1 to 500")
	}
	return exitOK
}

// parseAt reads --at: an RFC 3339 time or "+<duration>" from now. The time
// must be in the future; the store checks again with its own clock.
func parseAt(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return time.Time{}, fmt.Errorf("--at %q: want +<positive duration> such as +15m", s)
		}
		return now.Add(dur), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-11-23T18:00:00Z, or +15m", s)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("--at %q is not in the future; leave --at out to act now", s)
	}
	return t, nil
}

// terminal is implemented by test doubles of an interactive stdin.
type terminal interface{ IsTerminal() bool }

func isTerminal(r io.Reader) bool {
	if t, ok := r.(terminal); ok {
		return t.IsTerminal()
	}
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// /dev/null is a character device too; it is not an operator.
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// confirmed asks for terminate-all's confirmation: --yes, or the word
// typed at a terminal. A script without --yes is refused, never prompted.
func (c *cli) confirmed() bool {
	if c.yes {
		return true
	}
	if !isTerminal(c.stdin) {
		fmt.Fprintln(c.stderr, "sessionfence terminate-all: refused: this signs out every session; pass --yes to confirm (stdin is not a terminal)")
		return false
	}
	what := "sign out every session of every user"
	if !c.when.IsZero() {
		what = "sign out every session of every user at " + c.when.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(c.stderr, "This will %s (next login: %s).\nType terminate-all to confirm: ", what, c.policy)
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "terminate-all" {
		fmt.Fprintln(c.stderr, "sessionfence terminate-all: not confirmed; nothing was changed")
		return false
	}
	return true
}

// connect builds the valkey-go client, the store and the admin Service.
func (c *cli) connect() int {
	opt := valkey.ClientOption{
		InitAddress: strings.Split(c.addr, ","),
		Username:    c.username,
		Password:    c.env("SESSIONFENCE_VALKEY_PASSWORD"),
	}
	if c.useTLS {
		host, _, err := net.SplitHostPort(opt.InitAddress[0])
		if err != nil {
			host = opt.InitAddress[0]
		}
		opt.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	client, err := valkey.NewClient(opt)
	if err != nil {
		fmt.Fprintf(c.stderr, "sessionfence: store unavailable at %s: %v\n", c.addr, err)
		return exitUnavailable
	}
	store, err := valkeystore.New(client, valkeystore.Config{Prefix: c.prefix, InsecureAllowEviction: c.allowEviction})
	if err != nil {
		client.Close()
		if errors.Is(err, middleware.ErrStoreUnavailable) {
			fmt.Fprintf(c.stderr, "sessionfence: store unavailable at %s: %v\n", c.addr, err)
			return exitUnavailable
		}
		fmt.Fprintf(c.stderr, "sessionfence: %v\n", err)
		if errors.Is(err, valkeystore.ErrEvictionPolicy) {
			fmt.Fprintln(c.stderr, "(if the application runs with InsecureAllowEviction, pass --insecure-allow-eviction)")
		}
		return exitFailed
	}
	c.store, c.client = store, client
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if c.verbose {
		logger = slog.New(slog.NewTextHandler(c.stderr, nil))
	}
	// No guard: the CLI holds no cookie keys and knows no lifetimes of
	// its own. Its writer takes the lifetimes every guard of the
	// deployment recorded in the store (with none recorded, session
	// fences are kept for ever), and cannot keep anyone's session.
	w, err := middleware.NewWriter(middleware.WriterConfig{Store: store, Logger: logger})
	if err != nil {
		fmt.Fprintf(c.stderr, "sessionfence: %v\n", err)
		return exitFailed
	}
	if c.admin, err = admin.New(admin.Config{Writer: w}); err != nil {
		fmt.Fprintf(c.stderr, "sessionfence: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// action is the Action for the flags given.
func (c *cli) action() admin.Action {
	return admin.Action{Actor: c.actor, Reason: c.reason, Policy: c.policy, At: c.when}
}

// fail reports err and returns its exit code.
func (c *cli) fail(op string, err error) int {
	fmt.Fprintf(c.stderr, "sessionfence %s: %v\n", op, err)
	switch {
	case errors.Is(err, middleware.ErrStoreUnavailable):
		return exitUnavailable
	case errors.Is(err, middleware.ErrInvalidBump), errors.Is(err, middleware.ErrInvalidScope):
		return exitUsage
	}
	return exitFailed
}

func (c *cli) terminateAll(ctx context.Context, _ []string) int {
	return c.terminate(ctx, "terminate-all", middleware.GlobalScope())
}

func (c *cli) terminateTenant(ctx context.Context, args []string) int {
	return c.terminate(ctx, "terminate-tenant", middleware.TenantScope(args[0]))
}

func (c *cli) terminateUser(ctx context.Context, args []string) int {
	return c.terminate(ctx, "terminate-user", middleware.SubjectScope(args[0], args[1]))
}

func (c *cli) terminateSession(ctx context.Context, args []string) int {
	return c.terminate(ctx, "terminate-session", middleware.SessionScope(args[0]))
}

func (c *cli) terminate(ctx context.Context, op string, sc middleware.Scope) int {
	if !sc.Valid() {
		fmt.Fprintf(c.stderr, "sessionfence %s: arguments must not be empty\n", op)
		return exitUsage
	}
	res, err := c.admin.Terminate(ctx, sc, c.action())
	if err != nil {
		return c.fail(op, err)
	}
	return c.printResult(sc, res)
}

func (c *cli) cancel(ctx context.Context, args []string) int {
	sc, code := c.oneScope("cancel", args)
	if code != exitOK {
		return code
	}
	res, err := c.admin.Cancel(ctx, sc, c.action())
	if errors.Is(err, middleware.ErrNothingPending) {
		fmt.Fprintf(c.stderr, "sessionfence cancel: no announced termination is pending on %s\n", sc)
		return exitFailed
	}
	if err != nil {
		return c.fail("cancel", err)
	}
	return c.printResult(sc, res)
}

func (c *cli) reload(ctx context.Context, args []string) int {
	sc, code := c.oneScope("reload", args)
	if code != exitOK {
		return code
	}
	res, err := c.admin.Reload(ctx, sc, c.action())
	if err != nil {
		return c.fail("reload", err)
	}
	return c.printResult(sc, res)
}

func (c *cli) oneScope(op string, args []string) (middleware.Scope, int) {
	scopes, _ := parseScopes(args) // checked before connecting
	if len(scopes) != 1 {
		fmt.Fprintf(c.stderr, "sessionfence %s: name exactly one scope\n\n%s\n", op, scopeHelp)
		return middleware.Scope{}, exitUsage
	}
	return scopes[0], exitOK
}

// parseScopes reads a list of scopes in the CLI's word form (see
// scopeHelp).
func parseScopes(args []string) ([]middleware.Scope, error) {
	var out []middleware.Scope
	for len(args) > 0 {
		word := args[0]
		need := 0
		switch word {
		case "global":
		case "tenant", "session":
			need = 1
		case "user", "subject", "idp-session", "idp_session":
			need = 2
		default:
			sc, err := admin.ParseScope(word)
			if err != nil {
				return nil, fmt.Errorf("%q is not a scope", word)
			}
			out, args = append(out, sc), args[1:]
			continue
		}
		if len(args) < need+1 {
			return nil, fmt.Errorf("%s needs %d argument(s)", word, need)
		}
		var sc middleware.Scope
		switch word {
		case "global":
			sc = middleware.GlobalScope()
		case "tenant":
			sc = middleware.TenantScope(args[1])
		case "session":
			sc = middleware.SessionScope(args[1])
		case "user", "subject":
			sc = middleware.SubjectScope(args[1], args[2])
		default:
			sc = middleware.IdPSessionScope(args[1], args[2])
		}
		if !sc.Valid() {
			return nil, fmt.Errorf("%s: arguments must not be empty", word)
		}
		out, args = append(out, sc), args[need+1:]
	}
	return out, nil
}

func (c *cli) printJSON(v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(c.stderr, "sessionfence: writing output: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func (c *cli) printResult(sc middleware.Scope, res admin.Result) int {
	if c.asJSON {
		return c.printJSON(struct {
			Entry middleware.AuditEntry `json:"entry"`
			Fence admin.FenceView       `json:"fence"`
		}{res.Entry, admin.NewFenceView(sc, res.Fence, time.Now())})
	}
	e := res.Entry
	switch {
	case e.Action == "announce":
		fmt.Fprintf(c.stdout, "announced: %s will be signed out at %s (next login: %s)\n", e.Scope,
			e.EffectiveAt.Format(time.RFC3339), e.Policy)
	case e.Action == "cancel":
		fmt.Fprintf(c.stdout, "cancelled the announced termination of %s\n", e.Scope)
	case e.Action == "reload":
		fmt.Fprintf(c.stdout, "reload: sessions under %s re-read their claims on their next request (reload generation %d)\n",
			e.Scope, res.Fence.Reload)
	default:
		fmt.Fprintf(c.stdout, "%s: %s signed out (generation %d, next login: %s)\n", e.Action, e.Scope, e.Generation, e.Policy)
	}
	if e.Affected >= 0 {
		fmt.Fprintf(c.stdout, "sessions affected: %d\n", e.Affected)
	}
	fmt.Fprintf(c.stdout, "audit entry: %s by %s\n", e.ID, e.Actor)
	for _, n := range e.Notes {
		fmt.Fprintf(c.stdout, "note: %s\n", n)
	}
	return exitOK
}

func (c *cli) status(ctx context.Context, args []string) int {
	given, _ := parseScopes(args)
	scopes := []middleware.Scope{middleware.GlobalScope()}
	for _, sc := range given {
		if sc != scopes[0] {
			scopes = append(scopes, sc)
		}
	}
	fs, epoch, err := c.admin.Fences(ctx, scopes...)
	if err != nil {
		return c.fail("status", err)
	}
	now, err := c.store.Now(ctx)
	if err != nil {
		return c.fail("status", err)
	}
	views := make([]admin.FenceView, len(fs))
	for i, f := range fs {
		views[i] = admin.NewFenceView(scopes[i], f, now)
	}
	if c.asJSON {
		return c.printJSON(struct {
			Epoch     string            `json:"epoch"`
			StoreTime time.Time         `json:"store_time"`
			Fences    []admin.FenceView `json:"fences"`
		}{epoch, now.UTC(), views})
	}
	fmt.Fprintf(c.stdout, "epoch       %s\nstore time  %s\n\n", epoch, now.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tGEN\tRELOAD\tLAST BUMP\tPOLICY\tPENDING\tREASON")
	for _, v := range views {
		bumped, pending := "-", "-"
		if v.BumpedAt != nil {
			bumped = v.BumpedAt.Format(time.RFC3339)
		}
		if v.PendingAt != nil {
			pending = v.PendingAt.Format(time.RFC3339) + " (" + v.PendingPolicy + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", v.Scope, v.Generation, v.Reload, bumped, v.Policy, pending, strconv.Quote(v.Reason))
	}
	tw.Flush()
	return exitOK
}

func (c *cli) audit(ctx context.Context, _ []string) int {
	entries, next, err := c.admin.Audit(ctx, middleware.AuditQuery{Limit: c.limit, Before: c.before})
	if errors.Is(err, admin.ErrNotSupported) {
		fmt.Fprintln(c.stderr, "sessionfence audit: the store keeps no audit log")
		return exitFailed
	}
	if err != nil {
		if c.before != "" && !errors.Is(err, middleware.ErrStoreUnavailable) {
			fmt.Fprintf(c.stderr, "sessionfence audit: --before %q is not an entry id of this log\n", c.before)
			return exitUsage
		}
		return c.fail("audit", err)
	}
	if entries == nil {
		entries = []middleware.AuditEntry{}
	}
	if c.asJSON {
		return c.printJSON(struct {
			Entries []middleware.AuditEntry `json:"entries"`
			Next    string                  `json:"next,omitempty"`
		}{entries, next})
	}
	// Oldest first, like tail: the newest entry is the last line.
	tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tSCOPE\tPOLICY\tAFFECTED\tREQUEST\tREASON")
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		affected := "?"
		if e.Affected >= 0 {
			affected = strconv.Itoa(e.Affected)
		}
		action := e.Action
		if e.EffectiveAt != nil {
			action += "@" + e.EffectiveAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Actor, action, e.Scope,
			dash(e.Policy), affected, dash(e.RequestID), strconv.Quote(e.Reason))
	}
	tw.Flush()
	if next != "" {
		fmt.Fprintf(c.stdout, "older entries: sessionfence audit --before %s\n", next)
	}
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) sessions(ctx context.Context, args []string) int {
	if args[0] == "" || args[1] == "" {
		fmt.Fprintln(c.stderr, "sessionfence sessions: issuer and sub must not be empty")
		return exitUsage
	}
	list, err := c.admin.Sessions(ctx, args[0], args[1])
	if errors.Is(err, admin.ErrNotSupported) {
		fmt.Fprintln(c.stderr, "sessionfence sessions: the store keeps no session registry")
		return exitFailed
	}
	if err != nil {
		return c.fail("sessions", err)
	}
	if list == nil {
		list = []middleware.SessionInfo{}
	}
	if c.asJSON {
		return c.printJSON(struct {
			Issuer   string                   `json:"issuer"`
			Sub      string                   `json:"sub"`
			Sessions []middleware.SessionInfo `json:"sessions"`
		}{args[0], args[1], list})
	}
	tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tTENANT\tCREATED\tLAST SEEN\tEXPIRES\tIP\tUSER AGENT")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, dash(s.Tenant), s.Created.UTC().Format(time.RFC3339),
			s.LastSeen.UTC().Format(time.RFC3339), s.Expires.UTC().Format(time.RFC3339), dash(s.IP), strconv.Quote(s.UserAgent))
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "%d live session(s)\n", len(list))
	return exitOK
}
