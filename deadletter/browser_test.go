package deadletter_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// The tests in this file drive the web view in a real headless Chromium
// (Debian's chromium package, or the binary $CHROMIUM names). Without
// it they fail, saying how to install it, unless HEDDLE_SKIP_BROWSER=1
// says to skip them. With HEDDLE_SCREENSHOT=path, the list page of
// TestBrowserShowsTheTableFiltersAndTheDetailPage is written to path as
// a PNG.

// browserWait bounds each browser step: a page load, a wait for an
// element.
const browserWait = 30 * time.Second

// newBrowser starts a headless Chromium for t and returns the context of
// its one tab; the browser stops at cleanup. chromedp gives it a
// temporary user-data-dir, which it removes when the browser has exited.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, skip, err := chromiumPath()
	switch {
	case skip:
		t.Skipf("HEDDLE_SKIP_BROWSER=1: not driving the web view in Chromium (%v)", err)
	case err != nil:
		t.Fatal(err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 860),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
	})
	// The first action starts the browser: no deadline on it, since a
	// deadline would stop the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium at %s: %v", path, err)
	}
	return ctx
}

// chromiumPath returns the browser to drive: $CHROMIUM, else Debian's
// /usr/bin/chromium. When it is missing, the error says how to install
// it, and skip is true only if HEDDLE_SKIP_BROWSER=1 asks for it.
func chromiumPath() (path string, skip bool, err error) {
	path = cmp.Or(os.Getenv("CHROMIUM"), "/usr/bin/chromium")
	if _, err := exec.LookPath(path); err != nil {
		return "", os.Getenv("HEDDLE_SKIP_BROWSER") == "1", fmt.Errorf("the web view's browser tests need Chromium at %s (%v): "+
			"install it (Debian: apt-get install -y chromium), or set CHROMIUM to its path; HEDDLE_SKIP_BROWSER=1 skips these tests", path, err)
	}
	return path, false, nil
}

func TestWithoutChromiumTheBrowserTestsFailSayingHowToInstallIt(t *testing.T) {
	t.Setenv("CHROMIUM", filepath.Join(t.TempDir(), "no-chromium-here"))
	t.Setenv("HEDDLE_SKIP_BROWSER", "")
	_, skip, err := chromiumPath()
	if skip || err == nil || !strings.Contains(err.Error(), "apt-get install -y chromium") {
		t.Errorf("chromiumPath() without a browser = skip %v, %v; want a failure saying to install chromium", skip, err)
	}
	t.Setenv("HEDDLE_SKIP_BROWSER", "1")
	if _, skip, err := chromiumPath(); !skip || err == nil {
		t.Errorf("chromiumPath() with HEDDLE_SKIP_BROWSER=1 = skip %v, %v; want a skip", skip, err)
	}
}

// browse runs steps in the tab, each within browserWait.
func browse(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// read runs one action that reads a value, within browserWait.
func read[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// click clicks the element and waits for the page it loads.
func click(t *testing.T, tab context.Context, sel chromedp.CSS) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel, chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("clicking %s: %v", sel, err)
	}
	if resp == nil {
		t.Fatalf("clicking %s loaded no page", sel)
	}
}

// serveView serves h at /dead-letters on a loopback port.
func serveView(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(deadletter.DefaultPrefix, h)
	mux.Handle(deadletter.DefaultPrefix+"/", h)
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL + deadletter.DefaultPrefix
}

func TestBrowserWithATokenSignsInThroughTheForm(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{Token: webToken})
		f.add(rateLimited, task("t-secret", "echo"), nil)
		base := serveView(t, f.h)
		tab := newBrowser(t)

		browse(t, tab, "opening the view without the token",
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.ID("token")))
		if loc := read(t, tab, "the location", chromedp.Location()); !strings.Contains(loc, "/dead-letters/login?next=") {
			t.Errorf("without the token the browser is at %s, want the sign-in form", loc)
		}
		if body := read(t, tab, "the page text", chromedp.Text(chromedp.CSS("body"))); strings.Contains(body, "t-secret") {
			t.Errorf("the sign-in page shows an entry: %s", body)
		}

		browse(t, tab, "typing a wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-the-token"))
		click(t, tab, "#sign-in")
		if msg := read(t, tab, "the sign-in error", chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, "not the right one") {
			t.Errorf("after a wrong token the page says %q, want that it is not the right one", msg)
		}

		browse(t, tab, "typing the token", chromedp.SendKeys(chromedp.ID("token"), webToken))
		click(t, tab, "#sign-in")
		browse(t, tab, "the table after signing in", chromedp.WaitVisible(chromedp.ID("entries")))
		if got := read(t, tab, "the table", chromedp.Text(chromedp.ID("entries"))); !strings.Contains(got, "t-secret") {
			t.Errorf("after signing in the table reads %q, want t-secret", got)
		}
		// The cookie is HttpOnly: no script on the page can read it.
		if cookies := read(t, tab, "document.cookie", chromedp.Evaluate[string]("document.cookie")); cookies != "" {
			t.Errorf("document.cookie = %q, want the session cookie hidden from scripts", cookies)
		}
		click(t, tab, "button.link") // sign out
		browse(t, tab, "the sign-in form after signing out", chromedp.WaitVisible(chromedp.ID("token")))
		browse(t, tab, "opening the view after signing out", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	})
}

func TestBrowserWithoutATokenServesTheLoopbackClient(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{})
		f.add(rateLimited, task("t-1", "echo"), nil)
		tab := newBrowser(t)
		browse(t, tab, "opening the view", chromedp.Navigate(serveView(t, f.h)+"/"), chromedp.WaitVisible(chromedp.ID("entries")))
		if got := read(t, tab, "the table", chromedp.Text(chromedp.ID("entries"))); !strings.Contains(got, "t-1") {
			t.Errorf("the table reads %q, want t-1", got)
		}
		if n := read(t, tab, "sign-out buttons", chromedp.Evaluate[int](`document.querySelectorAll("button.link").length`)); n != 0 {
			t.Errorf("a view without a token offers %d sign-out buttons, want none", n)
		}
	})
}

func TestBrowserShowsTheTableFiltersAndTheDetailPage(t *testing.T) {
	const script = `<script>document.title="pwned";window.pwned=1</script>`
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{})
		f.add("rate_limited: tier 'standard' has no available capacity", task("a1c4e9f0-5b1d-4c2e-9f3a-7d6e5c4b3a21", "summarizer"), nil)
		f.add("invalid_task_message: payload: required", []byte(`{"task_id": "b7d2e3f4-a5b6-4c7d-9e8f-0a1b2c3d4e5f", "worker_type": "classifier"}`), nil)
		f.add("unknown_tier: tier 'huge' is not local, standard or frontier", task("c93e11aa-0f2b-4d8e-a1c3-5e7f9b2d4c60", "extractor"), nil)
		f.add("no_worker: no worker serves 'translator' at tier 'standard'", task("d5f0b2c8-3e4a-4b6c-8d0e-1f2a3b4c5d6e", "translator"), bus.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
		f.add("rate_limited: tier 'frontier' has no available capacity", task("e8a7c6d5-b4a3-4921-8f0e-d1c2b3a49586", "summarizer"), nil)
		f.add("rate_limited: tier 'frontier' has no available capacity", task("f1e2d3c4-b5a6-4978-8d9e-0f1a2b3c4d5e", "summarizer"), nil)
		base := serveView(t, f.h)
		tab := newBrowser(t)

		browse(t, tab, "opening the view", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("entries")))
		if shot := os.Getenv("HEDDLE_SCREENSHOT"); shot != "" && t.Name() == "TestBrowserShowsTheTableFiltersAndTheDetailPage/membus" {
			png := read(t, tab, "the screenshot", chromedp.FullScreenshot(100))
			if err := os.WriteFile(shot, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote the list page to %s", shot)
		}
		rows := read(t, tab, "the rows", chromedp.Evaluate[int](`document.querySelectorAll("#entries tbody tr").length`))
		counts := read(t, tab, "the counts", chromedp.Evaluate[map[string]string](
			`Object.fromEntries([...document.querySelectorAll(".kinds .count")].map(e => [e.dataset.kind || e.id, e.textContent]))`))
		want := map[string]string{"rate_limited": "3", "invalid_task_message": "1", "unknown_tier": "1", "no_worker": "1", "replay-count": "0"}
		if rows != 6 || len(counts) != len(want) {
			t.Errorf("the list shows %d rows and counts %v, want 6 rows and %v", rows, counts, want)
		}
		for k, v := range want {
			if counts[k] != v {
				t.Errorf("the count of %s reads %q, want %s", k, counts[k], v)
			}
		}

		// Filter: rate_limited summarizer tasks only.
		browse(t, tab, "choosing a filter",
			chromedp.SetValue(chromedp.ID("filter-reason"), "rate_limited"),
			chromedp.SetValue(chromedp.ID("filter-worker-type"), "summarizer"))
		click(t, tab, "#filter-apply")
		browse(t, tab, "the filtered table", chromedp.WaitVisible(chromedp.ID("entries")))
		ids := read(t, tab, "the filtered task ids", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#entries a.task")].map(a => a.textContent)`))
		if strings.Join(ids, ",") != "f1e2d3c4-b5a6-4978-8d9e-0f1a2b3c4d5e,e8a7c6d5-b4a3-4921-8f0e-d1c2b3a49586,a1c4e9f0-5b1d-4c2e-9f3a-7d6e5c4b3a21" {
			t.Errorf("the filtered table lists %v, want the three rate_limited summarizer tasks, newest first", ids)
		}
		if loc := read(t, tab, "the location", chromedp.Location()); !strings.Contains(loc, "reason=rate_limited") || !strings.Contains(loc, "worker_type=summarizer") {
			t.Errorf("the filtered page is %s, want the filter in its URL", loc)
		}

		// The detail page of one of them.
		click(t, tab, `#entries a.task`)
		original := read(t, tab, "the original task", chromedp.Text(chromedp.ID("original")))
		if !strings.Contains(original, "{\n  \"task_id\": \"f1e2d3c4-b5a6-4978-8d9e-0f1a2b3c4d5e\",\n  \"worker_type\": \"summarizer\",\n  \"payload\": {\n    \"text\": \"hi\"\n  }\n}") {
			t.Errorf("the detail page shows the original as %q, want it indented", original)
		}
		if reason := read(t, tab, "the reason", chromedp.Text(chromedp.ID("reason"))); reason != "rate_limited: tier 'frontier' has no available capacity" {
			t.Errorf("the detail page shows the reason %q", reason)
		}

		// A task whose fields hold markup and a script: shown as text, never run.
		original2 := []byte(`{"task_id": "x-1", "worker_type": "` + strings.ReplaceAll(script, `"`, `\"`) + `", "payload": {"html": "</pre>` + strings.ReplaceAll(script, `"`, `\"`) + `"}}`)
		f.add("rate_limited: <img src=x onerror=\"window.pwned=2\">", original2, nil)
		browse(t, tab, "opening the view with a hostile entry", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("entries")))
		cell := read(t, tab, "the hostile worker type", chromedp.Text(chromedp.CSS(`#entries tbody tr:first-child td.worker-type`)))
		if cell != script {
			t.Errorf("the hostile worker_type shows as %q, want the text %q", cell, script)
		}
		click(t, tab, `#entries tbody tr:first-child a.task`)
		if got := read(t, tab, "the hostile worker type on the detail page", chromedp.Text(chromedp.ID("worker-type"))); got != script {
			t.Errorf("the detail page shows the worker_type as %q, want the text %q", got, script)
		}
		pwned := read(t, tab, "window.pwned", chromedp.Evaluate[bool](`window.pwned !== undefined || document.title === "pwned" || document.querySelectorAll("script, img").length > 0`))
		if pwned {
			t.Error("a script or an element from the task ran or was inserted into the page")
		}
	})
}

func TestBrowserReplayOfATaskDeadLetteredForWantOfAWorkerReachesTheWorker(t *testing.T) {
	type textIn struct {
		Text string `json:"text"`
	}
	type textOut struct {
		Upper string `json:"upper"`
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{Token: webToken})
		rt, err := router.New(connect(), router.Config{})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())

		// No "upper" worker runs yet: the router dead-letters the task.
		caller := connect()
		tm := heddle.NewTaskMessage("upper", map[string]any{"text": "warp"})
		tm.ParentTaskID = "job-1"
		_, err = dispatch.Request(testkit.Context(t), caller, tm, dispatch.Timeout(testkit.Wait))
		if dead := (*dispatch.DeadLetterError)(nil); !errors.As(err, &dead) || dead.Reason != event.ReasonNoWorker {
			t.Fatalf("the call before the worker is up = %v, want a no_worker dead letter", err)
		}
		f.logs.Wait(t, "dead_letter.received", 1)

		// The worker comes up; its result for the task will go to job-1.
		w, err := worker.New(connect(), "upper", func(_ context.Context, in textIn) (textOut, error) {
			return textOut{Upper: strings.ToUpper(in.Text)}, nil
		}, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		results, _ := testkit.Subscribe(t, caller, heddle.ResultSubject("job-1"))

		tab := newBrowser(t)
		base := serveView(t, f.h)
		browse(t, tab, "signing in with the token in the URL", chromedp.Navigate(base+"/?token="+webToken), chromedp.WaitVisible(chromedp.ID("entries")))
		if loc := read(t, tab, "the location", chromedp.Location()); strings.Contains(loc, "token") {
			t.Errorf("after signing in the URL %s still holds the token", loc)
		}
		click(t, tab, `#entries a.task`)
		if id := read(t, tab, "the task id", chromedp.Text(chromedp.ID("task-id"))); id != tm.TaskID {
			t.Fatalf("the detail page is of %q, want %s", id, tm.TaskID)
		}
		click(t, tab, "#replay")
		if s := read(t, tab, "the replay summary", chromedp.Text(chromedp.ID("replay-summary"))); s != "Replayed 1 of 1" {
			t.Errorf("after the replay the page says %q, want Replayed 1 of 1", s)
		}

		m := testkit.Recv(t, results, "the worker's result for the replayed task")
		r, err := heddle.DecodeTaskResult(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if r.TaskID != tm.TaskID || r.Status != heddle.StatusCompleted || r.Output["upper"] != "WARP" {
			t.Errorf("the result of the replayed task = %+v, want %s completed with WARP", r, tm.TaskID)
		}

		browse(t, tab, "back to the list", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("replay-count")))
		if n := read(t, tab, "the replay count", chromedp.Text(chromedp.ID("replay-count"))); n != "1" {
			t.Errorf("the replay count reads %q, want 1", n)
		}
		if n := read(t, tab, "the rows", chromedp.Evaluate[int](`document.querySelectorAll("#entries tbody tr").length`)); n != 0 {
			t.Errorf("the list shows %d entries after the replay, want none", n)
		}
	})
}
