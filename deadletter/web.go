package deadletter

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/observe"
)

// DefaultPrefix is the path the web view is served under when
// HandlerOptions.Prefix is empty: the Workshop's.
const DefaultPrefix = "/dead-letters"

// DefaultPageSize is how many entries a page of the web view lists when
// HandlerOptions.PageSize is zero.
const DefaultPageSize = 50

// MaxPageSize bounds the limit a JSON client may ask for.
const MaxPageSize = 1000

//go:embed web
var webFiles embed.FS

// pages are the web view's templates, each with the layout, parsed once.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"list", "detail", "replayed", "login", "error"} {
		out[name] = template.Must(template.ParseFS(webFiles, "web/layout.html", "web/"+name+".html"))
	}
	return out
}()

// HandlerOptions configures the handler NewHandler returns. The zero
// value serves DefaultPrefix to loopback clients only.
type HandlerOptions struct {
	// Prefix is the path the handler is mounted at (DefaultPrefix when
	// empty; "/" for the root). Mount the handler at Prefix and at
	// Prefix+"/" in your mux, without stripping the prefix: it serves
	// every path under it.
	Prefix string
	// Token, when not empty, is required of every request (but the
	// sign-in page and the stylesheet): as "Authorization: Bearer
	// <token>" (scripts, the CLI), or through the sign-in form, which
	// sets an HttpOnly, SameSite=Strict cookie, or once as ?token= in a
	// GET's URL, which sets the same cookie and redirects to the URL
	// without it. It is compared in constant time. Programs take it from
	// the environment variable TokenEnv.
	Token string
	// AllowRemoteWithoutToken serves clients other than loopback ones
	// when Token is empty, for a handler mounted behind an
	// authentication of your own. Without it and without a token, a
	// request from any other address gets 403.
	AllowRemoteWithoutToken bool
	// PageSize is how many entries a page lists; zero means
	// DefaultPageSize. At most MaxPageSize.
	PageSize int
}

// NewHandler returns the dead-letter web view over store: the entries
// (received, reason, task_id, worker_type, replays), counts by reason
// kind at the top, filters by reason kind and worker type, a page per
// entry with its original task pretty-printed, replay of one entry or of
// every entry matching a filter, and the replay count. Pages are
// rendered on the server by html/template, which escapes everything
// taken from a task; they run no script, and the Content-Security-Policy
// forbids any. Replays are POSTs, refused when cross-origin
// (http.CrossOriginProtection).
//
// Under the prefix it serves the HTML pages
//
//	GET  /                      the list; ?reason=KIND&worker_type=T&offset=N filter and page it
//	GET  /entries/{id}          one entry
//	POST /entries/{id}/replay   replay it
//	POST /replay                replay every entry matching the form's reason and worker_type
//	GET, POST /login; POST /logout
//
// and the same as JSON for scripts and the CLI:
//
//	GET  /api/entries           a Page (?reason, ?worker_type, ?offset, ?limit)
//	GET  /api/entries/{id}      an Entry
//	POST /api/entries/{id}/replay, POST /api/replay   a ReplayReport
//	GET  /api/counts            Counts
//
// Errors of the JSON API are {"error": "..."} with a 4xx or 5xx status.
// Unless opts says otherwise (see HandlerOptions) only loopback clients
// are served; a program that listens for it should call CheckListenAddr
// first. It fails with heddle.ErrConfig when store is nil or opts is
// invalid. Events it logs: dead_letter_web.refused (a request without
// valid credentials), dead_letter_web.login_failed,
// dead_letter_web.replayed_selection; a Store logs its own replays.
func NewHandler(store Store, opts HandlerOptions, options ...heddle.Option) (http.Handler, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: dead-letter web view: the store is nil", heddle.ErrConfig)
	}
	prefix := cmp.Or(opts.Prefix, DefaultPrefix)
	if prefix == "/" {
		prefix = ""
	} else if !validPrefix.MatchString(prefix) {
		return nil, fmt.Errorf("%w: dead-letter web view: HandlerOptions.Prefix %q must be a path like /dead-letters (letters, digits, '.', '_', '~', '-' between slashes, no slash at the end)", heddle.ErrConfig, opts.Prefix)
	}
	if opts.PageSize < 0 || opts.PageSize > MaxPageSize {
		return nil, fmt.Errorf("%w: dead-letter web view: HandlerOptions.PageSize must be between 0 and %d, got %d", heddle.ErrConfig, MaxPageSize, opts.PageSize)
	}
	h := &handler{
		store:    store,
		prefix:   prefix,
		pageSize: cmp.Or(opts.PageSize, DefaultPageSize),
		open:     opts.AllowRemoteWithoutToken,
		log:      observe.New(options...),
		cop:      http.NewCrossOriginProtection(),
		mux:      http.NewServeMux(),
	}
	if opts.Token != "" {
		h.auth = newTokenAuth(opts.Token)
	}
	h.routes()
	return h, nil
}

var validPrefix = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

type handler struct {
	store    Store
	prefix   string
	pageSize int
	auth     *tokenAuth // nil: no token
	open     bool
	log      *observe.Emitter
	cop      *http.CrossOriginProtection
	mux      *http.ServeMux
}

func (h *handler) routes() {
	p := h.prefix
	m := h.mux
	if p != "" {
		m.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, p+"/"+query(r.URL.RawQuery), http.StatusMovedPermanently)
		})
	}
	m.HandleFunc("GET "+p+"/static/style.css", h.style)
	m.HandleFunc("GET "+p+"/login", h.loginPage)
	m.HandleFunc("POST "+p+"/login", h.login)
	m.HandleFunc("POST "+p+"/logout", h.logout)

	m.Handle("GET "+p+"/{$}", h.page(h.list))
	m.Handle("GET "+p+"/entries/{id}", h.page(h.detail))
	m.Handle("POST "+p+"/entries/{id}/replay", h.page(h.replayOne))
	m.Handle("POST "+p+"/replay", h.page(h.replaySelection))

	m.Handle("GET "+p+"/api/entries", h.api(h.apiEntries))
	m.Handle("GET "+p+"/api/entries/{id}", h.api(h.apiEntry))
	m.Handle("POST "+p+"/api/entries/{id}/replay", h.api(h.apiReplayOne))
	m.Handle("POST "+p+"/api/replay", h.api(h.apiReplaySelection))
	m.Handle("GET "+p+"/api/counts", h.api(h.apiCounts))
	m.Handle(p+"/api/", h.api(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	}))
	m.Handle(p+"/", h.page(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no page %s %s here.", r.Method, r.URL.Path))
	}))
}

// ServeHTTP sets the security headers of every response and refuses a
// cross-origin POST before anything else looks at the request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if err := h.cop.Check(r); err != nil {
		h.log.Warn("dead_letter_web.refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "error", err.Error())
		if h.isAPI(r) {
			writeJSONError(w, http.StatusForbidden, "cross-origin request refused: "+err.Error())
			return
		}
		h.fail(w, r, http.StatusForbidden, "Cross-origin request refused",
			"This request came from another site, so it was not carried out: "+err.Error()+".")
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *handler) isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, h.prefix+"/api/")
}

// access says whether r may be served: 0 when it may, else the status
// to refuse it with and why.
func (h *handler) access(r *http.Request) (status int, why string) {
	if h.auth == nil {
		if h.open || isLoopbackPeer(r.RemoteAddr) {
			return 0, ""
		}
		return http.StatusForbidden, fmt.Sprintf("This dead-letter view has no token, so it serves loopback clients only; set %s where it is served to open it to others.", TokenEnv)
	}
	if h.auth.bearer(r) || h.auth.cookie(r) {
		return 0, ""
	}
	return http.StatusUnauthorized, "a valid token is required (Authorization: Bearer, or sign in)"
}

// page wraps an HTML route with the access check: an unauthenticated GET
// goes to the sign-in form (or signs in with ?token=).
func (h *handler) page(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Has("token") && h.auth != nil {
			h.tokenInURL(w, r)
			return
		}
		status, why := h.access(r)
		switch {
		case status == 0:
			next(w, r)
			return
		case status == http.StatusUnauthorized && r.Method == http.MethodGet:
			http.Redirect(w, r, h.prefix+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h.log.Warn("dead_letter_web.refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status)
		h.fail(w, r, status, "Not allowed", why)
	})
}

// api wraps a JSON route with the access check.
func (h *handler) api(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, why := h.access(r)
		if status == 0 {
			next(w, r)
			return
		}
		h.log.Warn("dead_letter_web.refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="heddle dead letters"`)
		}
		writeJSONError(w, status, why)
	})
}

// tokenInURL signs in with ?token= and redirects to the URL without it,
// so that the token stays out of the history and later logs.
func (h *handler) tokenInURL(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tok := q.Get("token")
	q.Del("token")
	if !h.auth.tokenOK(tok) {
		h.log.Warn("dead_letter_web.login_failed", "remote", r.RemoteAddr, "via", "url")
		h.render(w, r, http.StatusUnauthorized, "login", loginView{Error: "That token is not the right one.", Next: h.safeNext(r.URL.Path + query(q.Encode()))})
		return
	}
	h.auth.setCookie(w, r, h.cookiePath())
	http.Redirect(w, r, r.URL.Path+query(q.Encode()), http.StatusSeeOther)
}

func (h *handler) cookiePath() string { return cmp.Or(h.prefix, "/") }

// safeNext returns next when it is a path of this view, else the list:
// the sign-in form never redirects elsewhere.
func (h *handler) safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.Contains(next, `\`) || strings.HasPrefix(next, "//") ||
		!strings.HasPrefix(u.Path, h.prefix+"/") || strings.HasPrefix(u.Path, h.prefix+"/login") {
		return h.prefix + "/"
	}
	return u.RequestURI()
}

func query(raw string) string {
	if raw == "" {
		return ""
	}
	return "?" + raw
}

func (h *handler) style(w http.ResponseWriter, r *http.Request) {
	css, err := fs.ReadFile(webFiles, "web/style.css")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(css)
}

type loginView struct {
	Error string
	Next  string
}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.auth == nil {
		http.Redirect(w, r, h.prefix+"/", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", loginView{Next: h.safeNext(r.URL.Query().Get("next"))})
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if h.auth == nil {
		http.Redirect(w, r, h.prefix+"/", http.StatusSeeOther)
		return
	}
	next := h.safeNext(r.PostFormValue("next"))
	if !h.auth.tokenOK(r.PostFormValue("token")) {
		h.log.Warn("dead_letter_web.login_failed", "remote", r.RemoteAddr, "via", "form")
		h.render(w, r, http.StatusUnauthorized, "login", loginView{Error: "That token is not the right one.", Next: next})
		return
	}
	h.auth.setCookie(w, r, h.cookiePath())
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	clearCookie(w, r, h.cookiePath())
	http.Redirect(w, r, h.prefix+"/login", http.StatusSeeOther)
}

// layout is what every page's frame needs.
type layout struct {
	Base     string
	LoggedIn bool
}

// render executes page with data into a buffer first, so that a failing
// template gives a clean 500, not half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	view := struct {
		layout
		Data any
	}{layout{Base: h.prefix, LoggedIn: h.auth != nil && h.auth.cookie(r)}, data}
	if err := pages[page].ExecuteTemplate(&buf, "layout", view); err != nil {
		h.log.Error("dead_letter_web.render_failed", "page", page, "error", err.Error())
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorView struct{ Title, Message string }

func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	h.render(w, r, status, "error", errorView{Title: title, Message: message})
}

// storeStatus is the status for an error of the store: not found is 404, an invalid
// query 400, anything else (the bus, a remote store) 502.
func storeStatus(err error) int {
	var bad *badRequest
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &bad):
		return http.StatusBadRequest
	default:
		return http.StatusBadGateway
	}
}

// badRequest is a request parameter the handler refuses.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// filterOf reads and checks the filter parameters of r (query or form).
func filterOf(r *http.Request) (Filter, error) {
	f := Filter{ReasonKind: r.FormValue("reason"), WorkerType: r.FormValue("worker_type")}
	if err := f.Validate(); err != nil {
		return Filter{}, &badRequest{fmt.Sprintf("parameter reason: %q is not a reason kind (one of %s)", f.ReasonKind, strings.Join(ReasonKinds(), ", "))}
	}
	return f, nil
}

// intParam reads a non-negative integer parameter, def when absent.
func intParam(r *http.Request, name string, def, most int) (int, error) {
	s := r.FormValue(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > most {
		return 0, &badRequest{fmt.Sprintf("parameter %s: %q is not a whole number from 0 to %d", name, s, most)}
	}
	return n, nil
}

// Pages.

type kindView struct {
	Kind     string
	Count    int
	URL      string
	Selected bool
}

type workerTypeView struct {
	Name, Label string
	Count       int
	Selected    bool
}

type rowView struct {
	ID, Reason, Kind, TaskID, WorkerType string
	Received, ReceivedISO                string
	ReplayCount                          int
	DetailURL, ReplayURL                 string
}

type listView struct {
	Counts           Counts
	Kinds            []kindView
	WorkerTypes      []workerTypeView
	Filter           Filter
	Filtered         bool
	Page             Page
	Rows             []rowView
	First, Last      int
	PrevURL, NextURL string
	FirstURL         string
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	offset, err := intParam(r, "offset", 0, 1<<31-1)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	counts, err := h.store.Counts(r.Context())
	if err != nil {
		h.fail(w, r, storeStatus(err), "The store failed", err.Error())
		return
	}
	page, err := h.store.Query(r.Context(), Query{Filter: f, Offset: offset, Limit: h.pageSize})
	if err != nil {
		h.fail(w, r, storeStatus(err), "The store failed", err.Error())
		return
	}
	v := listView{Counts: counts, Filter: f, Filtered: f != (Filter{}), Page: page, FirstURL: h.listURL(f, 0)}
	for _, k := range ReasonKinds() {
		n := counts.ByReasonKind[k]
		if n == 0 && k != f.ReasonKind {
			continue
		}
		kf := Filter{ReasonKind: k, WorkerType: f.WorkerType}
		if k == f.ReasonKind {
			kf.ReasonKind = "" // a second click clears the kind
		}
		v.Kinds = append(v.Kinds, kindView{Kind: k, Count: n, URL: h.listURL(kf, 0), Selected: k == f.ReasonKind})
	}
	types := make([]string, 0, len(counts.ByWorkerType)+1)
	for t := range counts.ByWorkerType {
		types = append(types, t)
	}
	if f.WorkerType != "" && counts.ByWorkerType[f.WorkerType] == 0 {
		types = append(types, f.WorkerType)
	}
	slices.Sort(types)
	for _, t := range types {
		if t == "" {
			continue // entries without a worker_type: the select's "any" shows them
		}
		v.WorkerTypes = append(v.WorkerTypes, workerTypeView{Name: t, Label: t, Count: counts.ByWorkerType[t], Selected: t == f.WorkerType})
	}
	for _, e := range page.Entries {
		v.Rows = append(v.Rows, h.row(e))
	}
	if len(v.Rows) > 0 {
		v.First, v.Last = offset+1, offset+len(v.Rows)
	}
	if offset > 0 {
		v.PrevURL = h.listURL(f, max(offset-h.pageSize, 0))
	}
	if offset+len(page.Entries) < page.Total {
		v.NextURL = h.listURL(f, offset+len(page.Entries))
	}
	h.render(w, r, http.StatusOK, "list", v)
}

// listURL is the list page for f from offset on.
func (h *handler) listURL(f Filter, offset int) string {
	q := url.Values{}
	if f.ReasonKind != "" {
		q.Set("reason", f.ReasonKind)
	}
	if f.WorkerType != "" {
		q.Set("worker_type", f.WorkerType)
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	return h.prefix + "/" + query(q.Encode())
}

func (h *handler) entryURL(id string) string { return h.prefix + "/entries/" + url.PathEscape(id) }

// received is when the router received the task, or when the store did
// for envelopes that do not say (Python's).
func received(e Entry) time.Time {
	if !e.DeadLetter.ReceivedAt.IsZero() {
		return e.DeadLetter.ReceivedAt
	}
	return e.StoredAt
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// maxCellRunes bounds the text of a task_id or worker_type in the list;
// the entry's page shows it whole.
const maxCellRunes = 64

// cell shortens s to maxCellRunes runes.
func cell(s string) string {
	if utf8.RuneCountInString(s) <= maxCellRunes {
		return s
	}
	return string([]rune(s)[:maxCellRunes-1]) + "…"
}

// explanation is the reason without its kind's prefix, which the list
// shows as a badge beside it.
func explanation(reason, kind string) string {
	if kind == ReasonKindOther {
		return reason
	}
	_, rest, _ := strings.Cut(reason, ":")
	return strings.TrimSpace(rest)
}

func (h *handler) row(e Entry) rowView {
	t := received(e)
	kind := ReasonKind(e.DeadLetter.Reason)
	return rowView{
		ID: e.ID, Reason: explanation(e.DeadLetter.Reason, kind), Kind: kind,
		TaskID: cell(e.DeadLetter.TaskID), WorkerType: cell(e.DeadLetter.WorkerType),
		Received: showTime(t), ReceivedISO: t.UTC().Format(time.RFC3339Nano),
		ReplayCount: e.ReplayCount,
		DetailURL:   h.entryURL(e.ID), ReplayURL: h.entryURL(e.ID) + "/replay",
	}
}

type headerView struct{ Name, Value string }

type detailView struct {
	Entry                          Entry
	Kind                           string
	Received, Stored, LastReplayed string
	Original                       string
	IsJSON                         bool
	Headers                        []headerView
	ReplayURL                      string
}

func (h *handler) detail(w http.ResponseWriter, r *http.Request) {
	e, err := h.store.Lookup(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, storeStatus(err), "No such dead letter", err.Error())
		return
	}
	original, isJSON := prettyOriginal(e.DeadLetter.Original())
	v := detailView{
		Entry: e, Kind: ReasonKind(e.DeadLetter.Reason),
		Received: showTime(received(e)), Stored: showTime(e.StoredAt), LastReplayed: showTime(e.LastReplayedAt),
		Original: original, IsJSON: isJSON, ReplayURL: h.entryURL(e.ID) + "/replay",
	}
	names := make([]string, 0, len(e.Header))
	for k := range e.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, val := range e.Header[k] {
			v.Headers = append(v.Headers, headerView{Name: k, Value: val})
		}
	}
	h.render(w, r, http.StatusOK, "detail", v)
}

// prettyOriginal indents an original that is JSON; anything else is shown
// as text, invalid UTF-8 replaced.
func prettyOriginal(b []byte) (string, bool) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err == nil {
		return buf.String(), true
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), false
}

type replayView struct {
	Report    ReplayReport
	Selection bool
	BackURL   string
}

func (h *handler) replayOne(w http.ResponseWriter, r *http.Request) {
	report, status := h.replayEntry(r.Context(), r.PathValue("id"))
	h.render(w, r, status, "replayed", replayView{Report: report, BackURL: h.prefix + "/"})
}

// replayEntry replays one entry and reports it as a selection of one.
func (h *handler) replayEntry(ctx context.Context, id string) (ReplayReport, int) {
	report := ReplayReport{Matched: 1, Replayed: []ReplayOutcome{}, Failed: []ReplayOutcome{}}
	o := ReplayOutcome{ID: id}
	e, err := h.store.Lookup(ctx, id)
	if err == nil {
		o.TaskID, o.WorkerType = e.DeadLetter.TaskID, e.DeadLetter.WorkerType
		err = h.store.Replay(ctx, id)
	}
	if err != nil {
		o.Error = err.Error()
		report.Failed = append(report.Failed, o)
		return report, storeStatus(err)
	}
	report.Replayed = append(report.Replayed, o)
	return report, http.StatusOK
}

func (h *handler) replaySelection(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	report, err := h.replayMatching(r, f)
	if err != nil && report.Matched == 0 {
		h.fail(w, r, storeStatus(err), "The replay failed", err.Error())
		return
	}
	h.render(w, r, http.StatusOK, "replayed", replayView{Report: report, Selection: true, BackURL: h.listURL(f, 0)})
}

func (h *handler) replayMatching(r *http.Request, f Filter) (ReplayReport, error) {
	report, err := ReplayMatching(r.Context(), h.store, f)
	args := []any{"reason_kind", f.ReasonKind, "worker_type", f.WorkerType, "matched", report.Matched,
		"replayed", len(report.Replayed), "failed", len(report.Failed), "left", report.Left, "remote", r.RemoteAddr}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	h.log.Log(r.Context(), slog.LevelInfo, "dead_letter_web.replayed_selection", args...)
	return report, err
}

// JSON API.

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, fmt.Appendf(nil, `{"error":%q}`, "encoding the answer: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (h *handler) apiEntries(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	offset, err := intParam(r, "offset", 0, 1<<31-1)
	if err == nil {
		var limit int
		limit, err = intParam(r, "limit", h.pageSize, MaxPageSize)
		if err == nil && limit == 0 {
			err = &badRequest{"parameter limit: must be from 1 to " + strconv.Itoa(MaxPageSize)}
		}
		if err == nil {
			var page Page
			page, err = h.store.Query(r.Context(), Query{Filter: f, Offset: offset, Limit: limit})
			if err == nil {
				if page.Entries == nil {
					page.Entries = []Entry{}
				}
				writeJSON(w, http.StatusOK, page)
				return
			}
		}
	}
	writeJSONError(w, storeStatus(err), err.Error())
}

func (h *handler) apiEntry(w http.ResponseWriter, r *http.Request) {
	e, err := h.store.Lookup(r.Context(), r.PathValue("id"))
	if err != nil {
		writeJSONError(w, storeStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *handler) apiReplayOne(w http.ResponseWriter, r *http.Request) {
	report, status := h.replayEntry(r.Context(), r.PathValue("id"))
	writeJSON(w, status, report)
}

func (h *handler) apiReplaySelection(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	report, err := h.replayMatching(r, f)
	if err != nil && report.Matched == 0 {
		writeJSONError(w, storeStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, report)
}

func (h *handler) apiCounts(w http.ResponseWriter, r *http.Request) {
	c, err := h.store.Counts(r.Context())
	if err != nil {
		writeJSONError(w, storeStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c)
}
