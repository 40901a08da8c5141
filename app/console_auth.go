package app

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The console's sessions.
//
// A session is a cookie holding the admin's name, an expiry and a random nonce, signed
// with HMAC-SHA256 under a key derived from that admin's token. Sessions are not stored
// on the server, so a session works on every replica that has the same configuration and
// survives restarts, and removing or changing an admin's token ends every session of
// that admin at once. Signing out clears the cookie in the browser and records the
// session's nonce in the database until the session's expiry, so a copy of the cookie
// taken before is refused too, on every replica: the one thing the server keeps, read
// with one primary-key lookup per console request.
//
// Every state-changing form carries a CSRF token: an HMAC of the session's nonce under
// the same key, so it cannot be computed without the token and changes with each
// session. The login form, which has no session yet, uses a double-submit cookie.

const (
	sessionCookie = "tally_console"
	loginCookie   = "tally_console_login"
	sessionTTL    = 8 * time.Hour
	csrfField     = "csrf"
	ctxCSRF       = "tally.console.csrf"
	ctxSession    = "tally.console.session"
)

// session is a verified console session.
type session struct {
	admin  string
	expiry time.Time
	nonce  string
}

// sessionKey derives the key that signs tok's sessions. The label keeps it apart from
// any other use of the token.
func sessionKey(tok string) []byte {
	m := hmac.New(sha256.New, []byte(tok))
	m.Write([]byte("tally console session v1"))
	return m.Sum(nil)
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

func randomToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b64.EncodeToString(b)
}

// adminToken returns the token of the admin named name.
func (a *App) adminToken(name string) (string, bool) {
	for _, ad := range a.admins {
		if ad.Name == name {
			return ad.Token, true
		}
	}
	return "", false
}

// adminByToken returns the name of the admin tok belongs to. Every token is compared,
// so the time taken does not say which one matched.
func (a *App) adminByToken(tok string) (string, bool) {
	name := ""
	for _, ad := range a.admins {
		if secretEqual(tok, ad.Token) && name == "" {
			name = ad.Name
		}
	}
	return name, name != ""
}

// signSession renders the cookie value of a session of the admin whose token is tok.
func signSession(s session, tok string) string {
	name := b64.EncodeToString([]byte(s.admin))
	exp := strconv.FormatInt(s.expiry.Unix(), 10)
	sig := mac(sessionKey(tok), name, exp, s.nonce)
	return name + "." + exp + "." + s.nonce + "." + b64.EncodeToString(sig)
}

// verifySession checks a cookie value: well formed, signed with the key of a configured
// admin's token, not expired at now.
func (a *App) verifySession(v string, now time.Time) (session, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 4 {
		return session{}, false
	}
	nameB, err := b64.DecodeString(parts[0])
	if err != nil {
		return session{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return session{}, false
	}
	sig, err := b64.DecodeString(parts[3])
	if err != nil {
		return session{}, false
	}
	tok, ok := a.adminToken(string(nameB))
	if !ok {
		return session{}, false
	}
	if !hmac.Equal(sig, mac(sessionKey(tok), parts[0], parts[1], parts[2])) {
		return session{}, false
	}
	s := session{admin: string(nameB), expiry: time.Unix(exp, 0), nonce: parts[2]}
	if !now.Before(s.expiry) {
		return session{}, false
	}
	return s, true
}

// csrfToken is the token the forms of session s carry.
func (a *App) csrfToken(s session) string {
	tok, _ := a.adminToken(s.admin)
	return b64.EncodeToString(mac(sessionKey(tok), "csrf", s.nonce))
}

// secure reports whether the browser reached us over TLS, directly or through a proxy
// that says so; a Secure cookie is then never sent over plain HTTP. Trusting the header
// costs nothing: a client that lies about it only gets a cookie it cannot send back.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie sets an HttpOnly, SameSite=Strict cookie scoped to the console; maxAge < 0
// deletes it.
func setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/console", MaxAge: maxAge,
		HttpOnly: true, Secure: secure(c.Request), SameSite: http.SameSiteStrictMode})
}

// consoleAuth admits a request with a valid session: the admin's name becomes the
// request's actor, as adminAuth does for the API. Without one, a page (GET) is sent to
// the login form and an action answers 401. A POST must carry the session's CSRF token
// (403 otherwise), so another site cannot make a signed-in browser act.
func (con *console) auth(c *gin.Context) {
	ck, _ := c.Cookie(sessionCookie)
	s, ok := con.app.verifySession(ck, time.Now())
	if ok {
		ended, err := con.app.store.ConsoleSessionEnded(c.Request.Context(), s.nonce)
		if err != nil {
			con.app.logFor(c.Request.Context()).Error("console: read sign-outs", "err", err)
			con.render(c, http.StatusServiceUnavailable, "error", page{Title: "Unavailable", Data: "The database did not answer; try again in a moment."})
			c.Abort()
			return
		}
		ok = !ended
	}
	if !ok {
		if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
			c.Redirect(http.StatusSeeOther, "/console/login")
			c.Abort()
			return
		}
		con.render(c, http.StatusUnauthorized, "error", page{Title: "Signed out", Data: "Your session has ended; sign in again."})
		c.Abort()
		return
	}
	csrf := con.app.csrfToken(s)
	if c.Request.Method == http.MethodPost {
		sent := c.PostForm(csrfField)
		if subtle.ConstantTimeCompare([]byte(sent), []byte(csrf)) != 1 {
			con.render(c, http.StatusForbidden, "error", page{Title: "Refused", Data: "The form is missing its CSRF token or it is stale; reload the page and try again."})
			c.Abort()
			return
		}
	}
	c.Set(ctxActor, s.admin)
	c.Set(ctxCSRF, csrf)
	c.Set(ctxSession, s)
	c.Next()
}

// loginForm: GET /console/login. It sets the login form's double-submit cookie.
func (con *console) loginForm(c *gin.Context) {
	nonce := randomToken()
	setCookie(c, loginCookie, nonce, 600)
	con.render(c, http.StatusOK, "login", page{Title: "Sign in", CSRF: nonce})
}

// login: POST /console/login with an admin token. On success it sets the session cookie
// and goes to the overview.
func (con *console) login(c *gin.Context) {
	ck, _ := c.Cookie(loginCookie)
	sent := c.PostForm(csrfField)
	if ck == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(ck)) != 1 {
		con.render(c, http.StatusForbidden, "error", page{Title: "Refused", Data: "The sign-in form is stale; reload it and try again."})
		return
	}
	name, ok := con.app.adminByToken(c.PostForm("token"))
	if !ok {
		con.app.logFor(c.Request.Context()).Warn("console: sign-in refused")
		nonce := randomToken()
		setCookie(c, loginCookie, nonce, 600)
		con.render(c, http.StatusUnauthorized, "login", page{Title: "Sign in", CSRF: nonce, Error: "That is not an admin token."})
		return
	}
	tok, _ := con.app.adminToken(name)
	s := session{admin: name, expiry: time.Now().Add(sessionTTL), nonce: randomToken()}
	setCookie(c, loginCookie, "", -1)
	setCookie(c, sessionCookie, signSession(s, tok), int(sessionTTL/time.Second))
	con.app.logFor(c.Request.Context()).Info("console: signed in", "actor", name)
	c.Redirect(http.StatusSeeOther, "/console")
}

// logout: POST /console/logout. The session ends on the server too: a copy of its
// cookie is refused from now on. When that cannot be recorded the cookie is still
// cleared in this browser, and the answer says the session is not yet ended elsewhere.
func (con *console) logout(c *gin.Context) {
	s := c.MustGet(ctxSession).(session)
	setCookie(c, sessionCookie, "", -1)
	if err := con.app.store.EndConsoleSession(c.Request.Context(), s.nonce, s.expiry); err != nil {
		con.app.logFor(c.Request.Context()).Error("console: record sign-out", "actor", s.admin, "err", err)
		con.render(c, http.StatusServiceUnavailable, "error", page{Title: "Not signed out everywhere",
			Data: "This browser is signed out, but the database did not record it: a copy of this session's cookie stays valid until it expires. Sign in and out again to end it."})
		return
	}
	con.app.logFor(c.Request.Context()).Info("console: signed out", "actor", s.admin)
	c.Redirect(http.StatusSeeOther, "/console/login")
}
