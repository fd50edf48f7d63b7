package deadletter

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// TokenEnv names the environment variable that holds the web view's
// token, as in the Python Heddle's Workshop. The handler reads no
// environment itself: the program serving it passes the value in
// HandlerOptions.Token and to CheckListenAddr.
const TokenEnv = "HEDDLE_WORKSHOP_TOKEN"

// MinTokenLength is the least length of a token that opens the web view
// on an address other than loopback: it must resist guessing.
const MinTokenLength = 16

// ErrInsecureListen is wrapped by CheckListenAddr's refusals.
var ErrInsecureListen = errors.New("deadletter: refusing to serve the dead-letter view")

// CheckListenAddr returns nil when serving the web view on addr (host:port,
// as for net.Listen) is safe with token: a loopback address (127.0.0.0/8,
// ::1, localhost) needs none; any other address, including an empty host
// (every interface), needs a token of at least MinTokenLength bytes. A
// refusal wraps ErrInsecureListen and says what to do; an addr that is not
// host:port is an error too.
func CheckListenAddr(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: listen address %q is not host:port: %v", ErrInsecureListen, addr, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	where := fmt.Sprintf("%q", host)
	if host == "" {
		where = "every interface"
	}
	switch {
	case token == "":
		return fmt.Errorf("%w on %s (%s) without a token: set %s, or listen on 127.0.0.1", ErrInsecureListen, addr, where, TokenEnv)
	case len(token) < MinTokenLength:
		return fmt.Errorf("%w on %s (%s): %s is %d bytes long, want at least %d", ErrInsecureListen, addr, where, TokenEnv, len(token), MinTokenLength)
	}
	return nil
}

// isLoopbackHost reports whether host names only the loopback interface.
// Names other than localhost are not resolved: they count as remote.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// isLoopbackPeer reports whether a request's RemoteAddr is a loopback
// address.
func isLoopbackPeer(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

// sessionCookie names the cookie the login form sets.
const sessionCookie = "heddle_dead_letters"

// sessionTTL is how long a sign-in lasts.
const sessionTTL = 12 * time.Hour

// tokenAuth checks the credentials of a request against a token. The
// token is kept only as its hash and the session value derived from it,
// both compared in constant time.
type tokenAuth struct {
	tokenSum [sha256.Size]byte
	session  string // the cookie's value: an HMAC of a fixed text under the token
}

func newTokenAuth(token string) *tokenAuth {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("heddle dead-letter view session v1"))
	return &tokenAuth{tokenSum: sha256.Sum256([]byte(token)), session: hex.EncodeToString(mac.Sum(nil))}
}

// tokenOK compares a presented token with the token, in time that does
// not depend on where they differ or on their lengths.
func (a *tokenAuth) tokenOK(presented string) bool {
	sum := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

// bearer reports whether r carries "Authorization: Bearer <token>".
func (a *tokenAuth) bearer(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && a.tokenOK(strings.TrimSpace(tok))
}

// cookie reports whether r carries the session cookie.
func (a *tokenAuth) cookie(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.session)) == 1
}

// setCookie signs the browser in: the cookie is HttpOnly (no script reads
// it) and SameSite=Strict (no other site's page sends it).
func (a *tokenAuth) setCookie(w http.ResponseWriter, r *http.Request, path string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: a.session, Path: path, MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// clearCookie signs the browser out.
func clearCookie(w http.ResponseWriter, r *http.Request, path string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}
