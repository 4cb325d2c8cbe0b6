package dav

import (
	"context"
	"net"
	"net/url"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TokenCookie names the cookie that carries an auth token to rawURL: a
// request to an admin port (the mailstore's 7071, the proxy's 6071) is an
// admin request, whose token the servlets read from ZM_ADMIN_AUTH_TOKEN;
// elsewhere ZM_AUTH_TOKEN (zextras/carbonio-mailbox
// common/src/main/java/com/zimbra/common/util/ZimbraCookie.java
// authTokenCookieName, store/…/cs/servlet/util/AuthUtil.java
// isAdminRequest, store/…/cs/service/UserServletUtil.java getAccount).
func TokenCookie(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "ZM_AUTH_TOKEN"
	}
	port := u.Port()
	if port == "" {
		_, port, _ = net.SplitHostPort(u.Host)
	}
	if port == "7071" || port == "6071" {
		return "ZM_ADMIN_AUTH_TOKEN"
	}
	return "ZM_AUTH_TOKEN"
}

// RESTClient is EndpointClient for Zimbra REST (UserServlet) requests to
// rawURL, credentials going to the origins of scope only: with a token, on an admin port the token goes in
// ZM_ADMIN_AUTH_TOKEN (and must then be an admin's token), elsewhere in
// ZM_AUTH_TOKEN.
func RESTClient(hc webdav.HTTPClient, scope *httpx.Scope, rawURL, user string, pw secret.Secret, token UserTokenSource, account string) webdav.HTTPClient {
	name := TokenCookie(rawURL)
	if token == nil || name == "ZM_AUTH_TOKEN" {
		return EndpointClient(hc, scope, user, pw, token, account)
	}
	if hc == nil {
		hc = DefaultHTTPClient()
	}
	if account == "" {
		account = user
	}
	var forget func()
	if f, ok := token.(interface{ ForgetUserToken(account string) }); ok {
		forget = func() { f.ForgetUserToken(account) }
	}
	return CookieAuth(hc, scope, name, func(ctx context.Context) (secret.Secret, error) {
		return token.UserToken(ctx, account)
	}, forget)
}
