package carbonio

import (
	"context"
	"net"
	"net/url"

	"github.com/zxmigrate/zxmigrate/secret"
)

// Admin ports: the mailstore's admin port, and the proxy's Admin Panel
// port whose /service location leads to it (zextras/tech-doc
// source/carbonio/install/requirements.rst; zextras/carbonio-nginx-conf
// conf/nginx/templates/nginx.conf.web.carbonio.admin.default.template).
const (
	AdminPort      = "7071"
	ProxyAdminPort = "6071"
)

// Auth cookies. A request that reaches the admin port is an admin request
// and the servlets read its token from ZM_ADMIN_AUTH_TOKEN; on the user
// ports from ZM_AUTH_TOKEN (zextras/carbonio-mailbox
// common/src/main/java/com/zimbra/common/util/ZimbraCookie.java
// authTokenCookieName, store/…/cs/servlet/util/AuthUtil.java
// isAdminRequest, store/…/cs/service/UserServletUtil.java getAccount).
const (
	CookieAuthToken      = "ZM_AUTH_TOKEN"
	CookieAdminAuthToken = "ZM_ADMIN_AUTH_TOKEN"
)

// IsAdminURL reports whether raw points at an admin port (7071 or 6071).
func IsAdminURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	port := u.Port()
	if port == "" {
		if _, p, err := net.SplitHostPort(u.Host); err == nil {
			port = p
		}
	}
	return port == AdminPort || port == ProxyAdminPort
}

// AuthCookie names the cookie that carries an auth token to raw:
// CookieAdminAuthToken on an admin port, else CookieAuthToken. On an admin
// port the token must be an admin's (Client.AdminTokens), since the
// servlet treats the request as an admin request.
func AuthCookie(raw string) string {
	if IsAdminURL(raw) {
		return CookieAdminAuthToken
	}
	return CookieAuthToken
}

// DAVOnAdminPort is the preflight problem of a DAV URL on an admin port,
// or "" when raw is fine: the DAV servlet is registered only on the user
// ports (zextras/carbonio-mailbox
// store/src/main/java/com/zextras/mailbox/MailboxAPIs.java).
func DAVOnAdminPort(raw string) string {
	if !IsAdminURL(raw) {
		return ""
	}
	return "points at an admin port (7071/6071), where Carbonio serves no DAV: use a user port, e.g. https://HOST/dav/ through the proxy or https://MAILSTORE:8443/dav/"
}

// AdminTokens returns a token source, of the shape caldav and carddav
// take, that gives the admin's own token whatever the account: the token
// to send in ZM_ADMIN_AUTH_TOKEN to a servlet on an admin port, where a
// global admin may read any account's REST folders.
func (c *Client) AdminTokens() AdminTokenSource { return AdminTokenSource{c} }

// AdminTokenSource gives the admin token of its client for every account.
type AdminTokenSource struct{ c *Client }

// UserToken returns the admin token; account is ignored.
func (a AdminTokenSource) UserToken(ctx context.Context, _ string) (secret.Secret, error) {
	tok, _, err := a.c.adminToken(ctx)
	return tok, err
}

// ForgetUserToken drops the admin token, so that the next call
// authenticates again (after a server refused it).
func (a AdminTokenSource) ForgetUserToken(string) {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	a.c.token = secret.Secret{}
}
