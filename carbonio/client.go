package carbonio

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// SOAPPath is the admin SOAP endpoint below Client.URL.
const SOAPPath = "/service/admin/soap"

// Namespaces of the requests the client sends.
const (
	nsAdmin = "urn:zimbraAdmin"
	nsMail  = "urn:zimbraMail"
	nsCtx   = "urn:zimbra"
)

// Fault codes the client knows by name.
const (
	CodeAuthExpired    = "service.AUTH_EXPIRED"
	CodeAuthRequired   = "service.AUTH_REQUIRED"
	CodeAuthFailed     = "account.AUTH_FAILED"
	CodePermDenied     = "service.PERM_DENIED"
	CodeNoSuchAccount  = "account.NO_SUCH_ACCOUNT"
	CodeNoSuchDomain   = "account.NO_SUCH_DOMAIN"
	CodeNoSuchDL       = "account.NO_SUCH_DISTRIBUTION_LIST"
	CodeServiceFailure = "service.FAILURE"
	CodeTooManyResults = "account.TOO_MANY_SEARCH_RESULTS"
)

// faultSentinel is an error that a *Fault with the same code matches.
type faultSentinel struct{ code string }

func (s *faultSentinel) Error() string { return "carbonio: " + s.code }

// Sentinels matched by *Fault with errors.Is.
var (
	ErrAuthExpired      error = &faultSentinel{CodeAuthExpired}
	ErrAuthRequired     error = &faultSentinel{CodeAuthRequired}
	ErrAuthFailed       error = &faultSentinel{CodeAuthFailed}
	ErrPermDenied       error = &faultSentinel{CodePermDenied}
	ErrNoSuchAccount    error = &faultSentinel{CodeNoSuchAccount}
	ErrNoSuchDomain     error = &faultSentinel{CodeNoSuchDomain}
	ErrNoSuchDistList   error = &faultSentinel{CodeNoSuchDL}
	ErrServiceFailure   error = &faultSentinel{CodeServiceFailure}
	ErrTooManyResults   error = &faultSentinel{CodeTooManyResults}
	ErrUnexpectedAnswer       = errors.New("unexpected answer")
)

// Fault is a SOAP fault returned by the server.
type Fault struct {
	// Code is Body.Fault.Detail.Error.Code, e.g. account.NO_SUCH_ACCOUNT.
	Code string
	// Reason is Body.Fault.Reason.Text.
	Reason string
	// Request is the name of the request that failed.
	Request string
}

// Error implements error.
func (f *Fault) Error() string {
	return fmt.Sprintf("carbonio: %s: %s: %s", f.Request, f.Code, f.Reason)
}

// Is matches the sentinel of the same code, and zxerrors.ErrAuth for
// authentication failures.
func (f *Fault) Is(target error) bool {
	if s, ok := target.(*faultSentinel); ok {
		return s.code == f.Code
	}
	if target == zxerrors.ErrAuth {
		return f.Code == CodeAuthFailed
	}
	return false
}

// RetryClass implements retry.Classifier: authentication failures are fatal,
// everything else concerns one request.
func (f *Fault) RetryClass() retry.Class {
	if f.Code == CodeAuthFailed {
		return retry.Fatal
	}
	return retry.Permanent
}

// HTTPError is a non-SOAP HTTP answer.
type HTTPError struct {
	Request string // the SOAP request, e.g. GetAccountRequest
	Status  int    // the HTTP status code
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("carbonio: %s: HTTP %d %s", e.Request, e.Status, http.StatusText(e.Status))
}

// StatusCode returns the HTTP status, for retry classification.
func (e *HTTPError) StatusCode() int { return e.Status }

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// RetryClass implements retry.Classifier.
func (p permanent) RetryClass() retry.Class { return retry.Permanent }

// isCertError reports a TLS certificate verification failure.
func isCertError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// Client talks to the Carbonio admin API. Its exported fields must be set
// before the first call and not changed afterwards; the methods are then
// safe for concurrent use.
type Client struct {
	// URL is https://HOST:7071 (the mailstore) or https://PROXY:6071; the
	// SOAP path is appended.
	URL string
	// Admin is the admin account, e.g. import-admin@example.com.
	Admin string
	// Password is the admin's password.
	Password secret.Secret
	// HTTPClient sends the requests; nil means a client with TLS
	// verification against the system roots, paced per host like every
	// default client of this module (internal/pace).
	HTTPClient *http.Client
	// Transport runs module commands on the command line: a *CLI running
	// `carbonio --json` locally or over SSH. doSmartScan,
	// doExternalRestore, doDeduplicate, doExport and getAvailable* run only
	// there unless UnverifiedSOAP is set, because no public source shows
	// their SOAP field names. Listing, watching and stopping operations
	// and listing volumes go over SOAP when URL is set, else here.
	Transport ModuleTransport
	// UnverifiedSOAP lets the commands above go over the zextras SOAP
	// request, with the CLI parameter names as field names (a guess), when
	// Transport is nil. Callers should tell their users it is unverified.
	UnverifiedSOAP bool
	// Logger receives debug and warning records; nil means silent. Tokens
	// and passwords are never logged.
	Logger *slog.Logger
	// Retry bounds retries of idempotent requests after transient errors;
	// the zero value means retry's defaults.
	Retry retry.Policy
	// PollInterval is the first wait between polls in Wait; 0 means 2s.
	PollInterval time.Duration
	// PollMax caps the wait between polls; 0 means 30s.
	PollMax time.Duration
	// DelegateDuration is the lifetime asked for user tokens; 0 means 1h.
	DelegateDuration time.Duration

	hcMu       sync.Mutex   // guards hc and hcFrom (not mu: adminToken holds mu while posting)
	hc         *http.Client // HTTPClient restricted to URL's origin
	hcFrom     *http.Client // the HTTPClient hc was made from
	mu         sync.Mutex
	token      secret.Secret
	tokenGen   int
	userTokens map[string]userToken
}

type userToken struct {
	tok     secret.Secret
	expires time.Time
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// httpClient returns HTTPClient (nil: httpx.NewClient with defaults) made
// to refuse requests and redirects outside URL's origin: the admin
// password and tokens travel in the request bodies, which a 307 or 308
// redirect would resend (see internal/httpx).
func (c *Client) httpClient() *http.Client {
	c.hcMu.Lock()
	defer c.hcMu.Unlock()
	if c.hc != nil && c.hcFrom == c.HTTPClient {
		return c.hc
	}
	scope, err := httpx.NewScope(c.URL, nil, false)
	if err != nil {
		// post reports the URL; keep the caller's client unchanged.
		if c.HTTPClient != nil {
			return c.HTTPClient
		}
		return defaultHTTPClient()
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	c.hc, c.hcFrom = httpx.RestrictClient(hc, scope), c.HTTPClient
	return c.hc
}

// defaultHTTPClient is httpx's default client paced by the process's
// shared pacer: Carbonio's DoSFilter counts SOAP requests with every other
// HTTP request to the server (internal/pace).
func defaultHTTPClient() *http.Client {
	return httpx.NewClient(httpx.Options{Wrap: pace.Default().Wrap})
}

// maxAnswer bounds one SOAP answer; the largest real ones (a directory
// search of a big domain) are a few MiB.
const maxAnswer = 256 << 20

// callOpts says how to send one request.
type callOpts struct {
	ns         string // namespace, default urn:zimbraAdmin
	account    string // act as this account (Header.context.account)
	path       string // URL path below SOAPPath, e.g. "/zextras"
	idempotent bool   // may be retried after transient errors
}

// call sends request name with body req and decodes the answer element
// into out. It authenticates when needed and once more on AUTH_EXPIRED or
// AUTH_REQUIRED.
func (c *Client) call(ctx context.Context, name string, req map[string]any, o callOpts, out any) error {
	for attempt := 0; ; attempt++ {
		tok, gen, err := c.adminToken(ctx)
		if err != nil {
			return err
		}
		raw, err := c.exchange(ctx, name, tok, req, o)
		if err != nil {
			if attempt == 0 && (errors.Is(err, ErrAuthExpired) || errors.Is(err, ErrAuthRequired)) {
				c.log().Info("carbonio: admin token refused, authenticating again", "request", name)
				c.dropToken(gen)
				continue
			}
			return err
		}
		if out == nil {
			return nil
		}
		return unmarshalAnswer(name, raw, out)
	}
}

// exchange posts one envelope, retrying transient errors for idempotent
// requests, and returns the answer element.
func (c *Client) exchange(ctx context.Context, name string, tok secret.Secret, req map[string]any, o callOpts) (json.RawMessage, error) {
	ns := o.ns
	if ns == "" {
		ns = nsAdmin
	}
	body := map[string]any{"_jsns": ns}
	for k, v := range req {
		body[k] = v
	}
	cx := map[string]any{"_jsns": nsCtx}
	if !tok.IsZero() {
		cx["authToken"] = tok.Reveal()
	}
	if o.account != "" {
		cx["account"] = map[string]any{"by": "name", "_content": o.account}
	}
	payload, err := json.Marshal(map[string]any{
		"Header": map[string]any{"context": cx},
		"Body":   map[string]any{name: body},
	})
	if err != nil {
		return nil, fmt.Errorf("carbonio: %s: encode: %w", name, err)
	}
	want := strings.TrimSuffix(name, "Request") + "Response"
	if name == "zextras" {
		want = "response"
	}
	var raw json.RawMessage
	attempts := c.Retry
	if !o.idempotent {
		attempts.Attempts = 1
	}
	err = retry.Do(ctx, attempts, func(int) error {
		var err error
		raw, err = c.post(ctx, name, want, o.path, payload)
		return err
	}, func(attempt int, err error, wait time.Duration) {
		c.log().Warn("carbonio: retrying", "request", name, "attempt", attempt, "err", err, "wait", wait)
	})
	return raw, err
}

func (c *Client) post(ctx context.Context, name, want, path string, payload []byte) (json.RawMessage, error) {
	if c.URL == "" {
		return nil, fmt.Errorf("carbonio: %s: no admin URL configured", name)
	}
	u := strings.TrimRight(c.URL, "/") + SOAPPath + path
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("carbonio: %s: %w", name, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.httpClient().Do(hreq)
	if err != nil {
		// Marked whichever HTTPClient sent it: a caller's own client too.
		err = zxerrors.Connect(err)
		if isCertError(err) {
			// Retrying cannot make an untrusted certificate trusted.
			return nil, permanent{fmt.Errorf("carbonio: %s: %w", name, err)}
		}
		return nil, fmt.Errorf("carbonio: %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("carbonio: %s: read answer: %w", name, err)
	}
	if len(b) > maxAnswer {
		return nil, permanent{fmt.Errorf("carbonio: %s: answer from %s larger than %d MiB (a broken or hostile server)", name, c.URL, maxAnswer>>20)}
	}
	c.log().Debug("carbonio: soap", "request", name, "status", resp.StatusCode, "bytes", len(b), "took", time.Since(start))
	raw, derr := decodeEnvelope(name, want, b)
	if resp.StatusCode != http.StatusOK {
		var f *Fault
		if errors.As(derr, &f) {
			return nil, f
		}
		return nil, &HTTPError{Request: name, Status: resp.StatusCode}
	}
	return raw, derr
}

// adminToken returns the cached admin token, authenticating first when
// there is none. gen identifies the token for dropToken.
func (c *Client) adminToken(ctx context.Context) (secret.Secret, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.token.IsZero() {
		return c.token, c.tokenGen, nil
	}
	if c.Admin == "" || c.Password.IsZero() {
		return secret.Secret{}, 0, fmt.Errorf("carbonio: AuthRequest: %w: no admin name or password configured", zxerrors.ErrAuth)
	}
	var ans struct {
		AuthToken text `json:"authToken"`
		Lifetime  text `json:"lifetime"`
	}
	raw, err := c.exchange(ctx, "AuthRequest", secret.Secret{}, map[string]any{
		"name":     c.Admin,
		"password": map[string]any{"_content": c.Password.Reveal()},
	}, callOpts{idempotent: true})
	if err == nil {
		err = unmarshalAnswer("AuthRequest", raw, &ans)
	}
	if err != nil {
		var f *Fault
		if errors.As(err, &f) && (f.Code == CodeAuthFailed || f.Code == CodePermDenied) {
			return secret.Secret{}, 0, fmt.Errorf("%w (%w)", err, zxerrors.ErrAuth)
		}
		return secret.Secret{}, 0, err
	}
	if ans.AuthToken == "" {
		return secret.Secret{}, 0, shapeErr("AuthRequest", "no authToken")
	}
	c.token = secret.New(string(ans.AuthToken))
	c.tokenGen++
	c.log().Debug("carbonio: authenticated", "admin", c.Admin, "lifetime_ms", ans.Lifetime.int64())
	return c.token, c.tokenGen, nil
}

// dropToken forgets the admin token gen, unless another caller has already
// replaced it.
func (c *Client) dropToken(gen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokenGen == gen {
		c.token = secret.Secret{}
	}
}

// Login authenticates now, so that bad credentials fail before any work
// starts. Other methods authenticate on demand.
func (c *Client) Login(ctx context.Context) error {
	_, _, err := c.adminToken(ctx)
	return err
}

// UserToken returns a token acting as account (DelegateAuthRequest),
// cached until 5 minutes (or a tenth of its lifetime) before it expires.
// It satisfies the token source interface of the caldav and carddav
// packages; send it as the ZM_AUTH_TOKEN cookie.
func (c *Client) UserToken(ctx context.Context, account string) (secret.Secret, error) {
	now := time.Now()
	c.mu.Lock()
	if t, ok := c.userTokens[account]; ok && now.Before(t.expires) {
		c.mu.Unlock()
		return t.tok, nil
	}
	c.mu.Unlock()
	d := c.DelegateDuration
	if d <= 0 {
		d = time.Hour
	}
	var ans struct {
		AuthToken text `json:"authToken"`
		Lifetime  text `json:"lifetime"`
	}
	err := c.call(ctx, "DelegateAuthRequest", map[string]any{
		"duration": int64(d / time.Second),
		"account":  []any{map[string]any{"by": "name", "_content": account}},
	}, callOpts{idempotent: true}, &ans)
	if err != nil {
		return secret.Secret{}, err
	}
	if ans.AuthToken == "" {
		return secret.Secret{}, shapeErr("DelegateAuthRequest", "no authToken for %s", account)
	}
	life := time.Duration(ans.Lifetime.int64()) * time.Millisecond
	if life <= 0 {
		life = d
	}
	margin := min(5*time.Minute, life/10)
	t := userToken{tok: secret.New(string(ans.AuthToken)), expires: now.Add(life - margin)}
	c.mu.Lock()
	if c.userTokens == nil {
		c.userTokens = make(map[string]userToken)
	}
	c.userTokens[account] = t
	c.mu.Unlock()
	return t.tok, nil
}

// String describes the client without its credentials or tokens.
func (c *Client) String() string {
	return fmt.Sprintf("carbonio.Client{URL: %q, Admin: %q}", c.URL, c.Admin)
}

// GoString is String, so that %#v prints no token either.
func (c *Client) GoString() string { return c.String() }

// ForgetUserToken drops the cached token of account, e.g. after a DAV
// server refused it; the next UserToken asks for a new one.
func (c *Client) ForgetUserToken(account string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.userTokens, account)
}
