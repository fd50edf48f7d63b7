package deadletter

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

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
		log:      observe.Actor("dead_letter_web", options...),
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
