package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
	"github.com/sessionfence/sessionfence/examples/internal/app"
)

// The browser test drives headless Chromium through the DevTools protocol
// (chromedp: no Node toolchain, no WebDriver) against the demo built
// in-process on free ports: alice (administrator) on the net/http
// instance and bob on the gin instance, in separate browser contexts
// (separate cookie jars, as two people's browsers).
//
// Environment:
//
//	SESSIONFENCE_BROWSER=0          skip this test
//	SESSIONFENCE_REQUIRE_BROWSER=1  fail, rather than skip, when Chromium is missing
//	SESSIONFENCE_ARTIFACTS=dir      where the screenshots go (default: a temporary directory)
//	SESSIONFENCE_CHROMIUM=path      the browser binary (default: chromium on PATH or /usr/bin/chromium)

// stepTimeout bounds every wait: the test polls for states with these
// deadlines and never sleeps for a fixed time.
const stepTimeout = 30 * time.Second

func chromiumPath() string {
	if p := os.Getenv("SESSIONFENCE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab is one browser context (cookie jar) with one tab.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	dir  string

	mu      sync.Mutex
	console []string
}

func newTab(t *testing.T, browser context.Context, name, dir string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run opens the tab; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	tb := &tab{t: t, name: name, ctx: ctx, dir: dir}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m.String())
			tb.mu.Unlock()
		}
	}()
	return tb
}

// do runs steps within stepTimeout; on failure it saves a screenshot and
// reports where the tab was and what its console said.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.fail(what, err)
	}
}

func (tb *tab) fail(what string, err error) {
	tb.t.Helper()
	tb.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	tb.mu.Lock()
	console := strings.Join(tb.console, "\n")
	tb.mu.Unlock()
	tb.t.Fatalf("%s: %s: %v\nlocation: %s\npage text:\n%s\nconsole:\n%s", tb.name, what, err, loc, text, console)
}

// text returns the text of the element matched by the CSS selector once
// visible.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		tb.fail("waiting for "+sel, err)
	}
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.fail("reading "+sel, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true. Evaluation
// errors (the page navigating away, a new document still loading) count
// as "not yet": navigations between pages are what the test waits for.
func (tb *tab) waitJS(what, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			tb.fail(what, fmt.Errorf("%w (last evaluation error: %v)", ctx.Err(), last))
			return
		case <-tick.C:
		}
	}
}

// shot saves a full-page PNG screenshot as a test artefact. The page is
// scrolled to the top first, so sticky elements sit where a reader expects.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[bool]("window.scrollTo(0, 0), true"))
	tb.capture(name, chromedp.FullScreenshot(100))
}

// shotViewport saves what the window shows (for a modal dialog, whose
// backdrop covers the viewport only).
func (tb *tab) shotViewport(name string) {
	tb.t.Helper()
	tb.capture(name, chromedp.CaptureScreenshot())
}

func (tb *tab) capture(name string, action chromedp.Action[[]byte]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, action)
	if err != nil {
		tb.t.Logf("%s: screenshot %s: %v", tb.name, name, err)
		return
	}
	path := filepath.Join(tb.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Errorf("writing %s: %v", path, err)
		return
	}
	tb.t.Logf("screenshot: %s", path)
}

// signIn fills the development provider's login page (and its one-time
// code page when asked) and reports whether the code was asked.
func (tb *tab) signIn(user string, expectOTP bool, shotOTP string) {
	tb.t.Helper()
	tb.do("filling the provider's login form of "+user,
		chromedp.WaitVisible(chromedp.ID("username")),
		// SetValue replaces what the provider may have filled in.
		chromedp.SetValue(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), devidp.DefaultPassword),
		chromedp.Click(chromedp.CSS(`button[value="login"]`)),
	)
	if !expectOTP {
		return
	}
	tb.do("waiting for the one-time-code page", chromedp.WaitVisible(chromedp.ID("otp")))
	if shotOTP != "" {
		tb.shot(shotOTP)
	}
	tb.do("entering the one-time code",
		chromedp.SendKeys(chromedp.ID("otp"), devidp.OTP),
		chromedp.Click(chromedp.CSS(`button[value="verify"]`)),
	)
}

// confirm fills the admin page's confirmation dialog and confirms.
func (tb *tab) confirm(shot string) {
	tb.t.Helper()
	tb.do("waiting for the confirmation dialog", chromedp.WaitVisible(chromedp.ID("confirm-input")))
	tb.waitJS("the dialog is modal with focus in the confirmation field",
		`document.getElementById("confirm").open && document.activeElement === document.getElementById("confirm-input") && document.getElementById("confirm-ok").disabled`)
	if shot != "" {
		tb.shotViewport(shot)
	}
	tb.do("typing the confirmation",
		chromedp.SendKeys(chromedp.ID("confirm-input"), "terminate-all"),
	)
	tb.waitJS("the confirm button is enabled", `!document.getElementById("confirm-ok").disabled`)
	tb.do("confirming", chromedp.Click(chromedp.ID("confirm-ok")))
	tb.waitJS("the dialog closed", `!document.getElementById("confirm").open`)
}

func TestBrowserAnnounceThenTerminateAllWithMFA(t *testing.T) {
	if os.Getenv("SESSIONFENCE_BROWSER") == "0" {
		t.Skip("SESSIONFENCE_BROWSER=0")
	}
	chromium := chromiumPath()
	if chromium == "" {
		if os.Getenv("SESSIONFENCE_REQUIRE_BROWSER") == "1" {
			t.Fatal("Chromium not found and SESSIONFENCE_REQUIRE_BROWSER=1 (apt-get install chromium, or set SESSIONFENCE_CHROMIUM)")
		}
		t.Skip("Chromium not found (apt-get install chromium); set SESSIONFENCE_REQUIRE_BROWSER=1 to make this a failure")
	}
	dir := os.Getenv("SESSIONFENCE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir, err := filepath.Abs(filepath.Join(dir, "browser"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	gin.SetMode(gin.TestMode)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := context.WithCancel(context.Background())
	d, err := start(ctx, options{IdPAddr: "127.0.0.1:0", NetHTTPAddr: "127.0.0.1:0", GinAddr: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		if err := d.Wait(); err != nil {
			t.Errorf("demo shutdown: %v", err)
		}
	})

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The machine may have no network: keep the browser from trying.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		if os.Getenv("SESSIONFENCE_REQUIRE_BROWSER") != "1" && errors.Is(err, exec.ErrNotFound) {
			t.Skipf("Chromium could not start: %v", err)
		}
		t.Fatalf("starting Chromium (%s): %v", chromium, err)
	}
	alice := newTab(t, browser, "alice", dir)
	bob := newTab(t, browser, "bob", dir)

	// 1. alice opens the admin page: the guard sends her to sign in.
	alice.do("opening the admin page", chromedp.Navigate(d.NetHTTPURL+app.AdminPath))
	alice.do("reaching the provider", chromedp.WaitVisible(chromedp.ID("username")))
	alice.shot("01-provider-login")
	alice.signIn("alice", false, "")
	alice.waitJS("the admin page is ready", `document.body.dataset.ready === "true" && !document.getElementById("admin-only").hidden`)
	if got := alice.text("#me-sub"); got != "alice" {
		t.Fatalf("admin page signed in as %q", got)
	}
	alice.waitJS("alice's own session is listed", `document.querySelector("#own-sessions tr.current") !== null`)
	alice.shot("02-alice-admin-page")

	// 2. bob opens the live events page on the other instance.
	bob.do("opening the events page", chromedp.Navigate(d.GinURL+"/events"))
	bob.signIn("bob", false, "")
	bob.waitJS("bob's event stream is connected", `(document.getElementById("events-status")||{}).textContent?.startsWith("Connected")`)
	bob.shot("03-bob-events-connected")

	// 3. alice announces a sign-out of everyone, with the MFA policy.
	alice.do("filling the announcement",
		chromedp.SendKeys(chromedp.ID("ann-reason"), "Rotating credentials"),
		chromedp.SetValue(chromedp.ID("ann-policy"), "mfa"),
		chromedp.Click(chromedp.ID("ann-open")),
	)
	alice.confirm("")
	alice.waitJS("the announcement is confirmed", `document.getElementById("status").textContent.includes("announced")`)
	alice.do("the pending announcement is shown", chromedp.WaitVisible(chromedp.ID("pending-cancel")))
	alice.shot("04-alice-announced")

	// 4. bob's page shows the banner (banner.js polls every few seconds).
	banner := bob.text("#sessionfence-banner")
	if !strings.HasPrefix(banner, "You will be signed out at ") || !strings.Contains(banner, ": Rotating credentials. Save your work.") {
		t.Errorf("bob's banner: %q", banner)
	}
	bob.shot("05-bob-banner")

	// 5. alice logs everyone out now, with the MFA policy, through the dialog.
	alice.do("opening the terminate-all dialog",
		chromedp.SendKeys(chromedp.ID("all-reason"), "Credential leak"),
		chromedp.Click(chromedp.ID("all-open")),
	)
	desc := alice.text("#confirm-desc")
	for _, want := range []string{"Everyone but you is signed out now", "Unsaved work in their open pages is lost.", "second factor (MFA)", "You stay signed in."} {
		if !strings.Contains(desc, want) {
			t.Errorf("the dialog does not say %q:\n%s", want, desc)
		}
	}
	alice.confirm("06-alice-confirm-dialog")
	alice.waitJS("terminate-all is confirmed", `document.getElementById("status").textContent.startsWith("Everyone but you was signed out")`)

	// 6. bob's stream closes, his page reloads, and he must sign in again
	// with the second factor.
	bob.waitJS("bob's page says the session ended", `location.href.startsWith(`+jsString(d.IdPURL)+`) ||
		(document.getElementById("events-status")||{}).textContent?.startsWith("Your session was ended")`)
	if loc, _ := chromedp.Run(bob.ctx, chromedp.Location()); strings.HasPrefix(loc, d.GinURL) {
		bob.shot("07-bob-stream-closed") // shown for 1.5 s before the reload
	}
	bob.waitJS("bob is sent to the provider", `location.href.startsWith(`+jsString(d.IdPURL)+`) && document.getElementById("username") !== null`)
	bob.shot("08-bob-sent-to-login")
	page := bob.text("main")
	if !strings.Contains(page, "asks for a second factor") {
		t.Errorf("the login page does not say a second factor is asked:\n%s", page)
	}
	bob.signIn("bob", true, "09-bob-one-time-code")
	bob.waitJS("bob is back on the events page", `location.href === `+jsString(d.GinURL+"/events")+` && (document.getElementById("events-status")||{}).textContent?.startsWith("Connected")`)
	bob.do("opening bob's home page", chromedp.Navigate(d.GinURL+"/"))
	if acr := bob.text("#acr"); acr != app.DefaultMFAACR {
		t.Errorf("bob's new session has acr %q, want %q", acr, app.DefaultMFAACR)
	}
	bob.shot("10-bob-home-after-mfa")

	// 7. alice's page keeps working, and the audit log shows both actions.
	alice.do("reloading the admin page", chromedp.Navigate(d.NetHTTPURL+app.AdminPath))
	alice.waitJS("alice is still signed in", `location.href === `+jsString(d.NetHTTPURL+app.AdminPath)+` && document.body.dataset.ready === "true"`)
	if got := alice.text("#me-sub"); got != "alice" {
		t.Errorf("after terminate-all the admin page shows %q", got)
	}
	alice.waitJS("the audit log lists the actions",
		`(() => { const a = document.querySelector("#audit table"); return a && a.textContent.includes("terminate_all") && a.textContent.includes("announce") && a.textContent.includes("Credential leak"); })()`)
	// Generation 2: the announcement reserved generation 1 (every
	// generation is handed out once), the immediate terminate-all took 2.
	alice.waitJS("the global fence shows generation 2 with the MFA policy",
		`(() => { const r = [...document.querySelectorAll("#fences tbody tr")].find(r => r.cells[0].textContent === "global"); return r && r.cells[1].textContent === "2" && r.cells[5].textContent === "mfa"; })()`)
	alice.shot("11-alice-audit-log")

	// 8. alice finds bob and signs him out everywhere; bob must sign in
	// again.
	alice.do("searching for bob",
		chromedp.SendKeys(chromedp.ID("user-sub"), "bob"),
		chromedp.Click(chromedp.CSS(`#user-form button[type="submit"]`)),
	)
	alice.waitJS("bob's sessions are listed", `(() => { const t = document.querySelector("#user-result table"); return t && t.tBodies[0].rows.length > 0; })()`)
	alice.shot("12-alice-user-search")
	alice.do("opening the per-user sign-out", chromedp.Click(chromedp.ID("user-end")))
	alice.waitJS("the dialog asks for no typed word and focuses Cancel",
		`document.getElementById("confirm").open && document.getElementById("confirm-typed").hidden && document.activeElement === document.getElementById("confirm-cancel")`)
	alice.do("confirming", chromedp.Click(chromedp.ID("confirm-ok")))
	alice.waitJS("bob is signed out", `document.getElementById("status").textContent.startsWith("bob was signed out everywhere")`)
	bob.do("bob opens his home page", chromedp.Navigate(d.GinURL+"/"))
	bob.waitJS("bob is sent to sign in", `location.href.startsWith(`+jsString(d.IdPURL)+`) && document.getElementById("username") !== null`)

	// 9. An announcement can be cancelled from the page.
	alice.do("announcing again",
		chromedp.SendKeys(chromedp.ID("ann-reason"), " (again)"),
		chromedp.Click(chromedp.ID("ann-open")),
	)
	alice.confirm("")
	alice.do("the pending announcement is shown", chromedp.WaitVisible(chromedp.ID("pending-cancel")))
	alice.do("cancelling it", chromedp.Click(chromedp.ID("pending-cancel")))
	alice.do("confirming", chromedp.WaitVisible(chromedp.ID("confirm-ok")), chromedp.Click(chromedp.ID("confirm-ok")))
	alice.waitJS("the announcement is gone", `document.getElementById("status").textContent.includes("cancelled") && !document.getElementById("pending-cancel")`)

	// 10. The same console mounted under gin (one catch-all route for the
	// page and its API) loads and answers: it does not stay at "Loading
	// who you are…".
	alice.do("opening the admin page of the gin instance", chromedp.Navigate(d.GinURL+app.AdminPath))
	alice.waitJS("the gin instance's admin page is ready", `document.body.dataset.ready === "true" && !document.getElementById("admin-only").hidden`)
	if got := alice.text("#me-sub"); got != "alice" {
		t.Errorf("the gin instance's admin page shows %q", got)
	}
	alice.shot("13-alice-admin-page-gin")
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return fmt.Sprintf("%q", s) }
