package deadletter_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
)

const webToken = "correct-horse-battery-staple"

// webFixture is a handler over a running Consumer.
type webFixture struct {
	*storeFixture
	h       http.Handler
	webLogs *testlog.Recorder
}

func newWebFixture(t *testing.T, connect func() bus.Bus, opts deadletter.HandlerOptions) *webFixture {
	t.Helper()
	f := newStoreFixture(t, connect, nil, deadletter.Config{})
	logs := testlog.New()
	h, err := deadletter.NewHandler(f.consumer, opts, heddle.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	return &webFixture{storeFixture: f, h: h, webLogs: logs}
}

// request is one request to the handler; from says where it comes from
// (a loopback address unless set).
type request struct {
	method, target string
	form           url.Values
	header         http.Header
	from           string
	cookies        []*http.Cookie
}

func (f *webFixture) do(r request) *http.Response {
	f.t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req := httptest.NewRequestWithContext(f.t.Context(), r.method, r.target, body)
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	for _, c := range r.cookies {
		req.AddCookie(c)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	if r.from != "" {
		req.RemoteAddr = r.from
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Result()
}

func bodyOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func (f *webFixture) ids() []string {
	entries, _ := f.consumer.List(0, 0)
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.ID
	}
	return out
}

func (f *webFixture) idOf(taskID string) string {
	f.t.Helper()
	entries, _ := f.consumer.List(0, 0)
	for _, e := range entries {
		if e.DeadLetter.TaskID == taskID {
			return e.ID
		}
	}
	f.t.Fatalf("no entry for task %s", taskID)
	return ""
}

func TestCheckListenAddrRefusesANonLoopbackAddressWithoutAToken(t *testing.T) {
	long := strings.Repeat("k", deadletter.MinTokenLength)
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"127.8.9.10:8080", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{"LOCALHOST:0", "", true},
		{"[::ffff:127.0.0.1]:8080", "", true},
		{":8080", "", false},
		{"0.0.0.0:8080", "", false},
		{"[::]:8080", "", false},
		{"192.168.1.10:8080", "", false},
		{"example.com:8080", "", false},
		{"localhost.example.com:8080", "", false},
		{":8080", long, true},
		{"0.0.0.0:8080", long, true},
		{"192.168.1.10:8080", "short", false},
		{"no-port", long, false},
	}
	for _, tt := range tests {
		err := deadletter.CheckListenAddr(tt.addr, tt.token)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, deadletter.ErrInsecureListen)) {
			t.Errorf("CheckListenAddr(%q, %d-byte token) = %v, want ok=%v", tt.addr, len(tt.token), err, tt.ok)
		}
	}
	err := deadletter.CheckListenAddr(":8080", "")
	if err == nil || !strings.Contains(err.Error(), deadletter.TokenEnv) || !strings.Contains(err.Error(), "every interface") {
		t.Errorf("the refusal %v should say it would listen on every interface and name %s", err, deadletter.TokenEnv)
	}
}

func TestNewHandlerRefusesABadConfigurationNamingTheField(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		c, err := deadletter.New(connect(), deadletter.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			store deadletter.Store
			opts  deadletter.HandlerOptions
			field string
		}{
			{"a nil store", nil, deadletter.HandlerOptions{}, "store"},
			{"a prefix without a leading slash", c, deadletter.HandlerOptions{Prefix: "dead-letters"}, "Prefix"},
			{"a prefix with a trailing slash", c, deadletter.HandlerOptions{Prefix: "/dead-letters/"}, "Prefix"},
			{"a prefix with a pattern", c, deadletter.HandlerOptions{Prefix: "/{x}"}, "Prefix"},
			{"a negative page size", c, deadletter.HandlerOptions{PageSize: -1}, "PageSize"},
			{"a page size beyond the maximum", c, deadletter.HandlerOptions{PageSize: deadletter.MaxPageSize + 1}, "PageSize"},
		}
		for _, tt := range tests {
			_, err := deadletter.NewHandler(tt.store, tt.opts)
			if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("%s: NewHandler = %v, want heddle.ErrConfig naming %s", tt.name, err, tt.field)
			}
		}
	})
}

func TestWithoutATokenTheHandlerServesLoopbackClientsOnly(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{})
		f.add(rateLimited, task("t-1", "echo"), nil)
		for _, from := range []string{"127.0.0.1:5000", "[::1]:5000"} {
			if resp := f.do(request{method: "GET", target: "/dead-letters/", from: from}); resp.StatusCode != http.StatusOK {
				t.Errorf("GET from %s = %d, want 200", from, resp.StatusCode)
			}
		}
		for _, target := range []string{"/dead-letters/", "/dead-letters/api/counts", "/dead-letters/entries/" + f.ids()[0]} {
			resp := f.do(request{method: "GET", target: target, from: "192.0.2.7:5000"})
			if body := bodyOf(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, deadletter.TokenEnv) || strings.Contains(body, "t-1") {
				t.Errorf("GET %s from a remote address = %d %q, want 403 naming %s and showing nothing", target, resp.StatusCode, body, deadletter.TokenEnv)
			}
		}
		resp := f.do(request{method: "POST", target: "/dead-letters/entries/" + f.ids()[0] + "/replay", from: "192.0.2.7:5000"})
		if resp.StatusCode != http.StatusForbidden || f.consumer.Len() != 1 {
			t.Errorf("a remote replay = %d with %d entries left, want 403 and the entry kept", resp.StatusCode, f.consumer.Len())
		}
		if got := f.webLogs.All("dead_letter_web.refused"); len(got) != 4 || got[0].Str("remote") != "192.0.2.7:5000" {
			t.Errorf("dead_letter_web.refused records = %+v, want one per refused request, naming the client", got)
		}

		for _, r := range []request{{method: "GET", target: "/dead-letters/login"}, {method: "POST", target: "/dead-letters/login", form: url.Values{"token": {"x"}}}} {
			if resp := f.do(r); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dead-letters/" || len(resp.Cookies()) != 0 {
				t.Errorf("%s /login without a token configured = %d to %q, want 303 to the list and no cookie", r.method, resp.StatusCode, resp.Header.Get("Location"))
			}
		}

		open, err := deadletter.NewHandler(f.consumer, deadletter.HandlerOptions{AllowRemoteWithoutToken: true})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		open.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", "/dead-letters/", nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "t-1") {
			t.Errorf("with AllowRemoteWithoutToken a remote GET = %d, want 200 and the table", rec.Code)
		}
	})
}

func TestWithATokenEveryRequestNeedsItsCredentials(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{Token: webToken})
		f.add(rateLimited, task("t-1", "echo"), nil)
		id := f.ids()[0]

		t.Run("a page without credentials goes to the sign-in form", func(t *testing.T) {
			resp := f.do(request{method: "GET", target: "/dead-letters/entries/" + id + "?x=1"})
			loc, _ := resp.Location()
			if resp.StatusCode != http.StatusSeeOther || loc.Path != "/dead-letters/login" || loc.Query().Get("next") != "/dead-letters/entries/"+id+"?x=1" {
				t.Errorf("GET without a token = %d to %v, want 303 to the sign-in form with next", resp.StatusCode, loc)
			}
			resp = f.do(request{method: "GET", target: loc.RequestURI()})
			if body := bodyOf(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="token"`) || strings.Contains(body, "t-1") {
				t.Errorf("the sign-in form = %d, want 200 with a token field and no entry", resp.StatusCode)
			}
		})
		t.Run("an API call without credentials gets 401", func(t *testing.T) {
			for _, h := range []http.Header{nil, bearer("wrong-token"), {"Authorization": {"Basic " + webToken}}, bearer(webToken + "x")} {
				resp := f.do(request{method: "GET", target: "/dead-letters/api/entries", header: h})
				if body := bodyOf(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
					!strings.Contains(body, `"error"`) || strings.Contains(body, "t-1") {
					t.Errorf("GET api/entries with %v = %d %s, want 401 with WWW-Authenticate: Bearer", h, resp.StatusCode, body)
				}
			}
		})
		t.Run("a POST without credentials replays nothing", func(t *testing.T) {
			resp := f.do(request{method: "POST", target: "/dead-letters/entries/" + id + "/replay"})
			if resp.StatusCode != http.StatusUnauthorized || f.consumer.Len() != 1 {
				t.Errorf("POST replay without a token = %d, %d entries left; want 401 and the entry kept", resp.StatusCode, f.consumer.Len())
			}
			resp = f.do(request{method: "POST", target: "/dead-letters/api/replay", header: bearer("nope")})
			if resp.StatusCode != http.StatusUnauthorized || f.consumer.Len() != 1 {
				t.Errorf("POST api/replay with a wrong token = %d, %d entries left; want 401 and the entry kept", resp.StatusCode, f.consumer.Len())
			}
		})
		t.Run("the bearer token opens the API from anywhere", func(t *testing.T) {
			resp := f.do(request{method: "GET", target: "/dead-letters/api/entries", header: bearer(webToken), from: "192.0.2.7:5000"})
			if body := bodyOf(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"t-1"`) {
				t.Errorf("GET api/entries with the token = %d %s, want 200 and the entry", resp.StatusCode, body)
			}
		})
		t.Run("a wrong token in the form is refused and logged", func(t *testing.T) {
			before := len(f.webLogs.All("dead_letter_web.login_failed"))
			resp := f.do(request{method: "POST", target: "/dead-letters/login", form: url.Values{"token": {"guess"}, "next": {"/dead-letters/"}}})
			if body := bodyOf(t, resp); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "not the right one") {
				t.Errorf("a wrong token = %d with cookies %v, want 401, no cookie and a message", resp.StatusCode, resp.Cookies())
			}
			if got := f.webLogs.All("dead_letter_web.login_failed"); len(got) != before+1 {
				t.Errorf("%d dead_letter_web.login_failed records, want %d", len(got), before+1)
			}
		})
		t.Run("the form sets an HttpOnly SameSite=Strict cookie that opens the pages", func(t *testing.T) {
			resp := f.do(request{method: "POST", target: "/dead-letters/login", form: url.Values{"token": {webToken}, "next": {"/dead-letters/entries/" + id}}})
			cookies := resp.Cookies()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/dead-letters/entries/"+id {
				t.Errorf("sign-in = %d to %q, want 303 to next", resp.StatusCode, loc)
			}
			if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/dead-letters" ||
				strings.Contains(cookies[0].Value, webToken) || cookies[0].MaxAge <= 0 {
				t.Fatalf("sign-in cookies = %+v, want one HttpOnly SameSite=Strict session cookie on the prefix, not holding the token", cookies)
			}
			resp = f.do(request{method: "GET", target: "/dead-letters/entries/" + id, cookies: cookies})
			if body := bodyOf(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "t-1") || !strings.Contains(body, "Sign out") {
				t.Errorf("GET with the cookie = %d, want 200, the entry and a sign-out button", resp.StatusCode)
			}
			forged := []*http.Cookie{{Name: cookies[0].Name, Value: strings.Repeat("0", len(cookies[0].Value))}}
			if resp := f.do(request{method: "GET", target: "/dead-letters/api/counts", cookies: forged}); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET with a forged cookie = %d, want 401", resp.StatusCode)
			}
			resp = f.do(request{method: "POST", target: "/dead-letters/logout", cookies: cookies})
			if out := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(out) != 1 || out[0].MaxAge >= 0 {
				t.Errorf("sign-out = %d with cookies %+v, want 303 and the cookie deleted", resp.StatusCode, out)
			}
		})
		t.Run("the sign-in form redirects only within the view", func(t *testing.T) {
			for _, next := range []string{"//evil.example/", "https://evil.example/dead-letters/", "/elsewhere", `/dead-letters/\evil`, "/dead-letters/login", "javascript:alert(1)"} {
				resp := f.do(request{method: "POST", target: "/dead-letters/login", form: url.Values{"token": {webToken}, "next": {next}}})
				if loc := resp.Header.Get("Location"); loc != "/dead-letters/" {
					t.Errorf("sign-in with next=%q redirects to %q, want /dead-letters/", next, loc)
				}
			}
		})
		t.Run("a token in the URL signs in and is taken out of it", func(t *testing.T) {
			resp := f.do(request{method: "GET", target: "/dead-letters/?reason=rate_limited&token=" + url.QueryEscape(webToken)})
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/dead-letters/?reason=rate_limited" || len(resp.Cookies()) != 1 {
				t.Errorf("GET ?token= = %d to %q with %d cookies, want 303 to the URL without the token, and the cookie", resp.StatusCode, loc, len(resp.Cookies()))
			}
			resp = f.do(request{method: "GET", target: "/dead-letters/?token=wrong"})
			if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
				t.Errorf("GET ?token=wrong = %d, want 401 and no cookie", resp.StatusCode)
			}
		})
		t.Run("the stylesheet needs no token", func(t *testing.T) {
			resp := f.do(request{method: "GET", target: "/dead-letters/static/style.css", from: "192.0.2.7:5000"})
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
				t.Errorf("GET style.css = %d %s, want 200 text/css", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	})
}

func TestACrossOriginReplayIsRefused(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{Token: webToken})
		incoming, _ := testkit.Subscribe(t, connect(), heddle.SubjectTasksIncoming)
		f.add(rateLimited, task("t-1", "echo"), nil)
		id := f.ids()[0]
		signIn := f.do(request{method: "POST", target: "/dead-letters/login", form: url.Values{"token": {webToken}}}).Cookies()
		tests := []struct {
			name   string
			target string
			header http.Header
		}{
			{"a form of another site", "/dead-letters/entries/" + id + "/replay", http.Header{"Sec-Fetch-Site": {"cross-site"}}},
			{"a form of a sibling site", "/dead-letters/replay", http.Header{"Sec-Fetch-Site": {"same-site"}}},
			{"an old browser's form of another origin", "/dead-letters/entries/" + id + "/replay", http.Header{"Origin": {"http://evil.example"}}},
			{"a script of another site calling the API", "/dead-letters/api/replay", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Authorization": {"Bearer " + webToken}}},
			{"the sign-in form posted from another site", "/dead-letters/login", http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := f.do(request{method: "POST", target: tt.target, header: tt.header, cookies: signIn, form: url.Values{"token": {webToken}}})
				if body := bodyOf(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(strings.ToLower(body), "cross-origin") || len(resp.Cookies()) != 0 {
					t.Errorf("POST %s = %d %q, want 403 saying cross-origin", tt.target, resp.StatusCode, body)
				}
				if f.consumer.Len() != 1 {
					t.Fatalf("a refused request replayed: %d entries left", f.consumer.Len())
				}
			})
		}
		resp := f.do(request{method: "POST", target: "/dead-letters/entries/" + id + "/replay", cookies: signIn,
			header: http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://example.com"}}})
		if resp.StatusCode != http.StatusOK || f.consumer.Len() != 0 {
			t.Errorf("a same-origin replay = %d with %d entries left, want 200 and the entry replayed", resp.StatusCode, f.consumer.Len())
		}
		testkit.Recv(t, incoming, "the task replayed by the same-origin POST")
	})
}

func TestTheListShowsCountsByReasonKindAndFilters(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{PageSize: 2})
		f.fillMixed()
		resp := f.do(request{method: "GET", target: "/dead-letters/"})
		body := bodyOf(t, resp)
		for _, want := range []string{
			`<span class="count" data-kind="rate_limited">3</span>`,
			`<span class="count" data-kind="no_worker">1</span>`,
			`<span class="count" data-kind="unknown_tier">1</span>`,
			`<span class="count" data-kind="other">1</span>`,
			`<span class="count" id="replay-count">0</span>`,
			"t-6", "t-5", `1–2 of 6`, `rel="next"`, `href="/dead-letters/?offset=2"`,
			`<option value="echo">echo (4)</option>`, `<option value="upper">upper (2)</option>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the list page lacks %q", want)
			}
		}
		if strings.Contains(body, "t-4") || strings.Contains(body, `data-kind="shutdown"`) {
			t.Error("the first page of 2 shows t-4, or counts a kind with no entry")
		}

		resp = f.do(request{method: "GET", target: "/dead-letters/?reason=rate_limited&worker_type=echo"})
		body = bodyOf(t, resp)
		if !strings.Contains(body, "t-5") || !strings.Contains(body, "t-1") || strings.Contains(body, ">t-3<") || !strings.Contains(body, "1–2 of 2 matching") ||
			!strings.Contains(body, `<option value="rate_limited" selected>`) || !strings.Contains(body, `<option value="echo" selected>`) ||
			strings.Contains(body, `rel="next"`) || !strings.Contains(body, "Replay all 2 matching") {
			t.Errorf("the filtered list does not show t-5 and t-1 only, with the filter selected:\n%s", body)
		}
		resp = f.do(request{method: "GET", target: "/dead-letters/?worker_type=echo&offset=2"})
		body = bodyOf(t, resp)
		if !strings.Contains(body, "3–4 of 4 matching") || !strings.Contains(body, `href="/dead-letters/?worker_type=echo"`) || !strings.Contains(body, ">t-1<") {
			t.Errorf("the second page of echo does not show 3–4 of 4 with a link back:\n%s", body)
		}

		for _, target := range []string{"/dead-letters/?reason=bogus", "/dead-letters/?offset=-1", "/dead-letters/?offset=x"} {
			resp := f.do(request{method: "GET", target: target})
			if body := bodyOf(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "parameter") {
				t.Errorf("GET %s = %d, want 400 naming the parameter", target, resp.StatusCode)
			}
		}
		if resp := f.do(request{method: "GET", target: "/dead-letters?reason=rate_limited"}); resp.StatusCode != http.StatusMovedPermanently ||
			resp.Header.Get("Location") != "/dead-letters/?reason=rate_limited" {
			t.Errorf("GET /dead-letters = %d to %q, want a redirect to /dead-letters/ keeping the query", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp := f.do(request{method: "GET", target: "/dead-letters/nothing-here"}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET an unknown page = %d, want 404", resp.StatusCode)
		}
	})
}

func TestAnEmptyStoreSaysSo(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{})
		body := bodyOf(t, f.do(request{method: "GET", target: "/dead-letters/"}))
		if !strings.Contains(body, "No dead letters.") || strings.Contains(body, "<table") {
			t.Errorf("the empty list page:\n%s", body)
		}
		body = bodyOf(t, f.do(request{method: "GET", target: "/dead-letters/?worker_type=ghost"}))
		if !strings.Contains(body, "No dead letter matches this filter.") {
			t.Errorf("the empty filtered page:\n%s", body)
		}
		f.add(rateLimited, task("t-1", "echo"), nil)
		body = bodyOf(t, f.do(request{method: "GET", target: "/dead-letters/?worker_type=echo&offset=5"}))
		if !strings.Contains(body, "past the last entry") || !strings.Contains(body, `href="/dead-letters/?worker_type=echo"`) {
			t.Errorf("a page past the last entry should say so and link to the first:\n%s", body)
		}
	})
}

func TestTheDetailPageShowsTheOriginalPrettyPrinted(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{})
		f.add(rateLimited, []byte(`{"task_id":"t-1","worker_type":"echo","payload":{"text":"hi","n":[1,2]}}`), bus.Header{"Traceparent": {"00-abc-def-01"}})
		f.add("invalid_task_message: malformed JSON", []byte("not json \xff at all"), nil)
		resp := f.do(request{method: "GET", target: "/dead-letters/entries/" + f.idOf("t-1")})
		body := bodyOf(t, resp)
		pretty := "{\n  &#34;task_id&#34;: &#34;t-1&#34;,\n  &#34;worker_type&#34;: &#34;echo&#34;,\n  &#34;payload&#34;: {\n    &#34;text&#34;: &#34;hi&#34;,"
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, pretty) || !strings.Contains(body, "00-abc-def-01") ||
			!strings.Contains(body, "tier &#39;local&#39; has no available capacity") || !strings.Contains(body, `action="/dead-letters/entries/`+f.idOf("t-1")+`/replay"`) {
			t.Errorf("the detail page = %d, want the original indented, its header, its reason and a replay form:\n%s", resp.StatusCode, body)
		}
		resp = f.do(request{method: "GET", target: "/dead-letters/entries/" + f.idOf("")})
		if body := bodyOf(t, resp); !strings.Contains(body, "not JSON") || !strings.Contains(body, "not json \uFFFD at all") {
			t.Errorf("the detail page of a non-JSON original should show it as text:\n%s", body)
		}
		resp = f.do(request{method: "GET", target: "/dead-letters/entries/no-such-id"})
		if body := bodyOf(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no-such-id") {
			t.Errorf("the detail page of an unknown id = %d, want 404 naming it", resp.StatusCode)
		}
	})
}

func TestNothingFromATaskIsRenderedUnescaped(t *testing.T) {
	const script = `<script>document.title="pwned"</script>`
	const img = `<img src=x onerror=alert(1)>`
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{})
		// Raw markup in the original's bytes, not \u003c escapes.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]any{
			"task_id":     `t-"><script>alert(2)</script>`,
			"worker_type": script,
			"payload":     map[string]any{"html": "</pre>" + script + img},
		}); err != nil {
			t.Fatal(err)
		}
		original := bytes.TrimSpace(buf.Bytes())
		if !bytes.Contains(original, []byte("</pre><script>")) {
			t.Fatalf("the original %s holds no raw markup", original)
		}
		f.add("rate_limited: "+img+script, original, bus.Header{"X-Evil": {script}})
		f.add("not json: "+script, []byte("</pre>"+script), nil)
		id := f.idOf(`t-"><script>alert(2)</script>`)
		pages := []string{
			"/dead-letters/",
			"/dead-letters/?worker_type=" + url.QueryEscape(script),
			"/dead-letters/entries/" + url.PathEscape(id),
			"/dead-letters/entries/" + url.PathEscape(f.idOf("")),
		}
		for _, p := range pages {
			resp := f.do(request{method: "GET", target: p})
			body := bodyOf(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d", p, resp.StatusCode)
			}
			for _, bad := range []string{"<script", "<img", "</pre><"} {
				if strings.Contains(body, bad) {
					t.Errorf("GET %s renders %q unescaped:\n%s", p, bad, body)
				}
			}
			if !strings.Contains(body, "&lt;script&gt;") {
				t.Errorf("GET %s does not show the task's markup as text", p)
			}
		}
		resp := f.do(request{method: "GET", target: "/dead-letters/api/entries"})
		if ct, body := resp.Header.Get("Content-Type"), bodyOf(t, resp); ct != "application/json" || strings.Contains(body, "<script") {
			t.Errorf("the JSON API answers %s with raw markup in it: %s", ct, body)
		}
		resp = f.do(request{method: "GET", target: "/dead-letters/"})
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("Content-Security-Policy = %q, want default-src 'none' and no script source", csp)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
	})
}

func TestReplayFromThePagesPublishesTheTasksAndReportsThem(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{})
		incoming, _ := testkit.Subscribe(t, connect(), heddle.SubjectTasksIncoming)
		f.fillMixed()

		resp := f.do(request{method: "POST", target: "/dead-letters/entries/" + f.idOf("t-2") + "/replay"})
		body := bodyOf(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Replayed 1 of 1") || !strings.Contains(body, "t-2") {
			t.Errorf("replaying t-2 = %d, want 200 saying it was replayed:\n%s", resp.StatusCode, body)
		}
		if got := testkit.Recv(t, incoming, "t-2 replayed"); string(got.Data) != string(task("t-2", "upper")) {
			t.Errorf("replayed %s, want t-2's original", got.Data)
		}
		resp = f.do(request{method: "POST", target: "/dead-letters/entries/" + f.idOf("t-1") + "x/replay"})
		if body := bodyOf(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "Replayed 0 of 1") || !strings.Contains(body, "not found") {
			t.Errorf("replaying an unknown id = %d, want 404 reporting the failure:\n%s", resp.StatusCode, body)
		}

		resp = f.do(request{method: "POST", target: "/dead-letters/replay", form: url.Values{"reason": {"rate_limited"}, "worker_type": {"echo"}}})
		body = bodyOf(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Replayed 2 of 2") || !strings.Contains(body, "t-1") || !strings.Contains(body, "t-5") {
			t.Errorf("replaying rate_limited echo = %d, want both replayed:\n%s", resp.StatusCode, body)
		}
		for _, want := range []string{"t-1", "t-5"} {
			if got := testkit.Recv(t, incoming, want+" replayed"); string(got.Data) != string(task(want, "echo")) {
				t.Errorf("replayed %s, want %s's original", got.Data, want)
			}
		}
		if got := f.webLogs.All("dead_letter_web.replayed_selection"); len(got) != 1 || got[0].Str("replayed") != "2" || got[0].Str("reason_kind") != "rate_limited" {
			t.Errorf("dead_letter_web.replayed_selection records = %+v, want one for 2 replayed", got)
		}
		body = bodyOf(t, f.do(request{method: "GET", target: "/dead-letters/"}))
		if !strings.Contains(body, `<span class="count" id="replay-count">3</span>`) || strings.Contains(body, ">t-1<") {
			t.Errorf("after three replays the list does not show the replay count 3, or still shows t-1:\n%s", body)
		}
		if resp := f.do(request{method: "POST", target: "/dead-letters/replay", form: url.Values{"reason": {"bogus"}}}); resp.StatusCode != http.StatusBadRequest || f.consumer.Len() != 3 {
			t.Errorf("replaying an unknown reason kind = %d with %d entries left, want 400 and nothing replayed", resp.StatusCode, f.consumer.Len())
		}
		if resp := f.do(request{method: "GET", target: "/dead-letters/entries/" + f.idOf("t-4") + "/replay"}); resp.StatusCode == http.StatusOK || f.consumer.Len() != 3 {
			t.Errorf("a GET of a replay URL = %d with %d entries left, want no replay", resp.StatusCode, f.consumer.Len())
		}
	})
}

func TestASelectionReplayReportsWhichFailed(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		f.fillMixed()
		h, err := deadletter.NewHandler(flakyStore{Store: f.consumer, fail: []string{"t-3"}}, deadletter.HandlerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w := &webFixture{storeFixture: f, h: h}
		resp := w.do(request{method: "POST", target: "/dead-letters/replay", form: url.Values{"reason": {"rate_limited"}}})
		body := bodyOf(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Replayed 2 of 3") || !strings.Contains(body, `<h2 id="failed">1 failed</h2>`) ||
			!strings.Contains(body, "<td>t-3</td>") || !strings.Contains(body, bus.ErrMaxPayload.Error()) {
			t.Errorf("a selection with one failure = %d, want 2 of 3 replayed and t-3 listed with its error:\n%s", resp.StatusCode, body)
		}
		resp = w.do(request{method: "POST", target: "/dead-letters/api/entries/" + w.idOf("t-3") + "/replay"})
		var report deadletter.ReplayReport
		if err := json.Unmarshal([]byte(bodyOf(t, resp)), &report); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadGateway || len(report.Failed) != 1 || report.Failed[0].TaskID != "t-3" || len(report.Replayed) != 0 {
			t.Errorf("a failing single replay over the API = %d %+v, want 502 and t-3 failed", resp.StatusCode, report)
		}
	})
}

func TestTheJSONAPIServesEntriesCountsAndReplays(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newWebFixture(t, connect, deadletter.HandlerOptions{Token: webToken})
		incoming, _ := testkit.Subscribe(t, connect(), heddle.SubjectTasksIncoming)
		f.fillMixed()
		get := func(target string, v any) int {
			t.Helper()
			resp := f.do(request{method: "GET", target: target, header: bearer(webToken)})
			if err := json.Unmarshal([]byte(bodyOf(t, resp)), v); err != nil {
				t.Fatalf("GET %s: %v", target, err)
			}
			return resp.StatusCode
		}
		var page deadletter.Page
		if code := get("/dead-letters/api/entries?reason=rate_limited&limit=2&offset=1", &page); code != http.StatusOK ||
			page.Total != 3 || !slices.Equal(deadLetterTaskIDs(page.Entries), []string{"t-3", "t-1"}) {
			t.Errorf("api/entries = %d %+v, want t-3 and t-1 of 3", code, page)
		}
		if code := get("/dead-letters/api/entries?worker_type=ghost", &page); code != http.StatusOK || page.Total != 0 || page.Entries == nil {
			t.Errorf("api/entries of no match = %d %+v, want an empty list, not null", code, page)
		}
		var e deadletter.Entry
		if code := get("/dead-letters/api/entries/"+f.idOf("t-4"), &e); code != http.StatusOK || e.DeadLetter.TaskID != "t-4" || e.DeadLetter.Reason != badTier {
			t.Errorf("api/entries/{id} = %d %+v, want the entry of t-4", code, e)
		}
		var counts deadletter.Counts
		if code := get("/dead-letters/api/counts", &counts); code != http.StatusOK || counts.Total != 6 || counts.ByReasonKind["rate_limited"] != 3 || counts.ByWorkerType["upper"] != 2 {
			t.Errorf("api/counts = %d %+v, want 6 with 3 rate_limited and 2 upper", code, counts)
		}
		var apiErr struct{ Error string }
		for target, want := range map[string]int{
			"/dead-letters/api/entries/no-such-id":     http.StatusNotFound,
			"/dead-letters/api/entries?reason=nope":    http.StatusBadRequest,
			"/dead-letters/api/entries?limit=0":        http.StatusBadRequest,
			"/dead-letters/api/entries?limit=1001":     http.StatusBadRequest,
			"/dead-letters/api/entries?offset=-2":      http.StatusBadRequest,
			"/dead-letters/api/no-such-endpoint":       http.StatusNotFound,
			"/dead-letters/api/entries/x/replay":       http.StatusNotFound,
			"/dead-letters/api/counts?reason=whatever": http.StatusOK,
		} {
			apiErr.Error = ""
			if code := get(target, &apiErr); code != want || (want != http.StatusOK && apiErr.Error == "") {
				t.Errorf("GET %s = %d %+v, want %d with an error message", target, code, apiErr, want)
			}
		}

		resp := f.do(request{method: "POST", target: "/dead-letters/api/entries/" + f.idOf("t-2") + "/replay", header: bearer(webToken)})
		var report deadletter.ReplayReport
		if err := json.Unmarshal([]byte(bodyOf(t, resp)), &report); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || len(report.Replayed) != 1 || report.Replayed[0].TaskID != "t-2" || report.Replayed[0].WorkerType != "upper" {
			t.Errorf("api replay of t-2 = %d %+v, want it replayed", resp.StatusCode, report)
		}
		testkit.Recv(t, incoming, "t-2 replayed through the API")

		resp = f.do(request{method: "POST", target: "/dead-letters/api/replay?worker_type=echo", header: bearer(webToken)})
		if err := json.Unmarshal([]byte(bodyOf(t, resp)), &report); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || report.Matched != 4 || len(report.Replayed) != 4 || len(report.Failed) != 0 || report.Filter.WorkerType != "echo" {
			t.Errorf("api replay of echo = %d %+v, want the 4 echo entries replayed", resp.StatusCode, report)
		}
		for range 4 {
			testkit.Recv(t, incoming, "an echo task replayed through the API")
		}
		if code := get("/dead-letters/api/counts", &counts); code != http.StatusOK || counts.Total != 1 || counts.ReplayCount != 5 {
			t.Errorf("api/counts after the replays = %+v, want 1 left and replay_count 5", counts)
		}
	})
}

func TestTheHandlerServesAnyPrefixAndTheRoot(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		f.add(rateLimited, task("t-1", "echo"), nil)
		for _, tt := range []struct{ prefix, page, link string }{
			{"/ops/dlq", "/ops/dlq/", `href="/ops/dlq/entries/`},
			{"/", "/", `href="/entries/`},
		} {
			h, err := deadletter.NewHandler(f.consumer, deadletter.HandlerOptions{Prefix: tt.prefix})
			if err != nil {
				t.Fatal(err)
			}
			w := &webFixture{storeFixture: f, h: h}
			resp := w.do(request{method: "GET", target: tt.page})
			if body := bodyOf(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, tt.link) || !strings.Contains(body, "t-1") {
				t.Errorf("prefix %q: GET %s = %d, want the list with links under the prefix:\n%s", tt.prefix, tt.page, resp.StatusCode, body)
			}
			if resp := w.do(request{method: "GET", target: strings.TrimSuffix(tt.prefix, "/") + "/static/style.css"}); resp.StatusCode != http.StatusOK {
				t.Errorf("prefix %q: the stylesheet = %d", tt.prefix, resp.StatusCode)
			}
		}
	})
}
