package faultproxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ZimbraRepeatLimit is Zimbra's default imap_throttle_command_limit.
const ZimbraRepeatLimit = 25

// ZimbraMaxConsecutiveErrors is Zimbra's default imap_max_consecutive_error.
const ZimbraMaxConsecutiveErrors = 5

// DefaultErrorByeLine is what IMAPRules.MaxConsecutiveErrors sends before it
// closes a connection, like Zimbra's goodbye banner.
const DefaultErrorByeLine = "* BYE Zimbra IMAP server terminating connection\r\n"

// maxLine bounds one IMAP line (without literals) the proxy will buffer.
const maxLine = 16 << 20

// maxBufferedLiteral bounds a server literal held in memory to forward a
// response in one piece.
const maxBufferedLiteral = 64 << 20

// IMAPRules makes the proxy behave like a Zimbra/Carbonio IMAP server on top
// of any IMAP server (the limits of zextras/carbonio-mailbox store/src/main/java/com/zimbra/cs/imap). The proxy parses client commands and
// server responses line by line, literals included, and answers some commands
// itself. A nil *IMAPRules in Options turns IMAP parsing off.
//
// Limits: an APPEND whose mailbox name is sent as a literal is forwarded
// unchecked. A MULTIAPPEND (RFC 3502) sent with non-synchronizing literals
// is read whole (up to maxBufferedCommand bytes) and every message is
// checked: one refused message refuses the whole command, as a server must;
// with synchronizing literals only its first message is checked.
type IMAPRules struct {
	// RejectFlag reports whether an APPEND carrying flag must fail with
	// "NO APPEND failed". nil means ZimbraTagFlag.
	RejectFlag func(flag string) bool
	// MaxLiteral answers APPENDs whose message literal is larger than this
	// many bytes with "NO maximum message size exceeded". 0 means no limit.
	MaxLiteral int64
	// RepeatLimit drops the connection with "* BYE too many repeated ...
	// requests dropping connection" when more than this many identical
	// commands arrive in a row. 0 means no throttle.
	RepeatLimit int
	// ArgsIgnored lists the commands counted by name alone for RepeatLimit,
	// as Zimbra does for CREATE; other commands repeat only when their text
	// (tag and literal contents excluded) is identical. nil means {"CREATE"}.
	ArgsIgnored []string
	// MaxConsecutiveErrors drops the connection with DefaultErrorByeLine
	// right after the answer that makes this many errors in a row, as
	// Zimbra's imap_max_consecutive_error does (NioImapHandler checks the
	// count after each request). Errors are tagged NO and BAD answers and
	// untagged BADs, the server's and the rules' own (a refused APPEND); a
	// tagged OK resets the count. 0 means no limit.
	MaxConsecutiveErrors int
	// CutAnswer, when set, is asked about every command (its name, e.g.
	// "UID EXPUNGE", and its arguments): when it returns true, the command
	// goes to the server, and the server's tagged answer to it never comes
	// back; the proxy closes the connection instead. The server did the
	// command, the client cannot know: what a crash or a dropped network
	// does at the worst moment. Counted in Stats.Cuts. It may be called
	// concurrently.
	CutAnswer func(name, args string) bool
	// FetchPerAccount lets one FETCH per authenticated account run at a
	// time across all the proxy's connections, as Zimbra's
	// ImapCommandThrottle does with imap_throttle_fetch (default true):
	// "each authenticated account may only perform one expensive command
	// at a time regardless of number of sessions/connections"
	// (zextras/carbonio-mailbox
	// store/src/main/java/com/zimbra/cs/imap/ImapCommandThrottle.java,
	// lock; ImapHandler.doFETCH takes it for a FETCH that asks for more
	// than FLAGS and UID and holds it until the FETCH is answered). Such a
	// FETCH is held back before it reaches the server until the account's
	// previous one has its tagged answer. The account is the user of LOGIN
	// or AUTHENTICATE PLAIN (the authorization identity when given), less a
	// "*master" suffix. Counted in Stats.FetchWaits.
	FetchPerAccount bool
}

// ZimbraTagFlag reports whether flag looks like a Zimbra tag keyword
// ("NAME:FLAG123"), which Carbonio refuses on APPEND.
func ZimbraTagFlag(flag string) bool { return strings.Contains(flag, ":") }

// ZimbraRules returns the rules of a default Zimbra/Carbonio server:
// tag keywords refused, the 10,240,000-byte message limit, the 25-repeat
// throttle, the connection dropped after 5 errors in a row and one FETCH
// per account at a time.
func ZimbraRules() *IMAPRules {
	return &IMAPRules{MaxLiteral: 10_240_000, RepeatLimit: ZimbraRepeatLimit, MaxConsecutiveErrors: ZimbraMaxConsecutiveErrors,
		FetchPerAccount: true}
}

// loginAccount returns the account a LOGIN or AUTHENTICATE PLAIN command
// (name, args) or a SASL continuation line (name "", args the line) logs
// in as, "" when it cannot tell; sasl reports an AUTHENTICATE PLAIN whose
// initial response comes on the next line.
func loginAccount(name, args string) (account string, sasl bool) {
	args = strings.TrimRight(args, "\r\n")
	switch name {
	case "LOGIN":
		user, _ := firstAstring(args)
		return stripMaster(user), false
	case "AUTHENTICATE":
		mech, ir, _ := strings.Cut(args, " ")
		if !strings.EqualFold(mech, "PLAIN") {
			return "", false
		}
		if ir == "" {
			return "", true
		}
		return plainAccount(ir), false
	case "":
		return plainAccount(args), false
	}
	return "", false
}

// plainAccount decodes a SASL PLAIN response (RFC 4616): the
// authorization identity when given, else the authentication identity.
func plainAccount(b64 string) string {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return ""
	}
	parts := strings.SplitN(string(raw), "\x00", 3)
	if len(parts) != 3 {
		return ""
	}
	if parts[0] != "" {
		return parts[0]
	}
	return stripMaster(parts[1])
}

// stripMaster drops a master-login suffix ("user*admin" logs in as user).
func stripMaster(user string) string {
	u, _, _ := strings.Cut(user, "*")
	return u
}

// firstAstring returns the first argument when it is an atom or a quoted
// string ("" for a literal).
func firstAstring(args string) (string, bool) {
	if args == "" || args[0] == '{' {
		return "", false
	}
	if args[0] != '"' {
		a, _, _ := strings.Cut(args, " ")
		return a, true
	}
	var b strings.Builder
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case '\\':
			if i+1 < len(args) {
				i++
				b.WriteByte(args[i])
			}
		case '"':
			return b.String(), true
		default:
			b.WriteByte(args[i])
		}
	}
	return "", false
}

// expensiveFetch reports whether FETCH arguments ask for more than FLAGS
// and UID, the items Zimbra answers from its cache without the account's
// FETCH lock (ImapHandler FETCH_FROM_CACHE).
func expensiveFetch(args string) bool {
	_, items, ok := strings.Cut(strings.TrimSpace(args), " ")
	if !ok {
		return false
	}
	items = strings.ToUpper(items)
	if strings.ContainsAny(items, "[<") {
		return true // BODY[...], BINARY[...], partial fetches
	}
	for _, f := range strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(items)) {
		if f != "FLAGS" && f != "UID" {
			return true
		}
	}
	return false
}

// holdFetch waits, before a FETCH of pc's account reaches the server,
// until no other FETCH of the account is under way, and records tag as the
// FETCH whose tagged answer lets the next one go.
func (r *IMAPRules) holdFetch(pc *pconn, tag string) error {
	pc.fetchMu.Lock()
	acct := pc.account
	pc.fetchMu.Unlock()
	if acct == "" {
		return nil
	}
	ch := pc.p.fetchLock(acct)
	select {
	case ch <- struct{}{}:
	default:
		pc.p.c.fetchWaits.Add(1)
		t0 := time.Now()
		select {
		case ch <- struct{}{}:
			pc.p.c.fetchWaitNanos.Add(int64(time.Since(t0)))
		case <-pc.done:
			return errFault
		}
	}
	pc.fetchMu.Lock()
	pc.fetchTag, pc.fetchHeld = tag+" ", ch
	pc.fetchMu.Unlock()
	return nil
}

// fetchAnswered reports whether line is the tagged answer of the FETCH
// pc holds the account's lock for.
func (pc *pconn) fetchAnswered(line []byte) bool {
	pc.fetchMu.Lock()
	defer pc.fetchMu.Unlock()
	return pc.fetchHeld != nil && bytes.HasPrefix(line, []byte(pc.fetchTag))
}

// releaseFetch lets the account's next FETCH go, if pc holds the lock.
func (pc *pconn) releaseFetch() {
	pc.fetchMu.Lock()
	ch := pc.fetchHeld
	pc.fetchHeld, pc.fetchTag = nil, ""
	pc.fetchMu.Unlock()
	if ch != nil {
		<-ch
	}
}

// answerKind classifies the first line of a server response for
// MaxConsecutiveErrors.
type answerKind uint8

const (
	answerOther answerKind = iota
	answerOK               // tagged OK
	answerError            // tagged NO or BAD, untagged BAD
)

// classifyAnswer returns the kind of the response whose first line is line.
func classifyAnswer(line []byte) answerKind {
	tag, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(tag) == 0 || bytes.Equal(tag, []byte("+")) {
		return answerOther
	}
	status, _, _ := bytes.Cut(bytes.TrimRight(rest, "\r\n"), []byte(" "))
	untagged := bytes.Equal(tag, []byte("*"))
	switch {
	case bytes.EqualFold(status, []byte("BAD")):
		return answerError
	case untagged:
		return answerOther
	case bytes.EqualFold(status, []byte("NO")):
		return answerError
	case bytes.EqualFold(status, []byte("OK")):
		return answerOK
	}
	return answerOther
}

// countAnswer records an answer sent to the client and reports whether it
// makes MaxConsecutiveErrors errors in a row.
func (r *IMAPRules) countAnswer(pc *pconn, k answerKind) bool {
	if r.MaxConsecutiveErrors <= 0 || k == answerOther {
		return false
	}
	pc.errMu.Lock()
	defer pc.errMu.Unlock()
	if k == answerOK {
		pc.errors = 0
		return false
	}
	pc.errors++
	return pc.errors >= r.MaxConsecutiveErrors
}

// dropForErrors ends the connection the way Zimbra does after too many
// errors in a row: a BYE, then close.
func (r *IMAPRules) dropForErrors(pc *pconn) {
	pc.p.c.errorDrops.Add(1)
	_ = pc.writeClient([]byte(DefaultErrorByeLine))
	pc.shutdown()
}

func (r *IMAPRules) argsIgnored(name string) bool {
	list := r.ArgsIgnored
	if list == nil {
		list = []string{"CREATE"}
	}
	for _, n := range list {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// readLine reads up to and including '\n'. At the end of input it returns
// what it read and io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		b, err := br.ReadSlice('\n')
		out = append(out, b...)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return out, err
		}
		if len(out) > maxLine {
			return out, fmt.Errorf("faultproxy: IMAP line longer than %d bytes", maxLine)
		}
	}
}

// literalAt returns the size of the literal announced at the end of line and
// whether it is synchronizing ({N} from a client); -1 when there is none.
func literalAt(line []byte) (n int64, sync bool) {
	l := bytes.TrimRight(line, "\r\n")
	if len(l) < 3 || l[len(l)-1] != '}' {
		return -1, false
	}
	open := bytes.LastIndexByte(l, '{')
	if open < 0 {
		return -1, false
	}
	num := l[open+1 : len(l)-1]
	sync = true
	if len(num) > 0 && (num[len(num)-1] == '+' || num[len(num)-1] == '-') {
		num, sync = num[:len(num)-1], false
	}
	v, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || v < 0 {
		return -1, false
	}
	return v, sync
}

// parseCommand splits "tag NAME args" and upper-cases NAME ("UID FETCH" for
// UID commands). ok is false for lines that are not commands (SASL
// continuation lines, DONE).
func parseCommand(line []byte) (tag, name, args string, ok bool) {
	s := strings.TrimRight(string(line), "\r\n")
	tag, rest, found := strings.Cut(s, " ")
	if !found || tag == "" || rest == "" {
		return "", "", "", false
	}
	name, args, _ = strings.Cut(rest, " ")
	name = strings.ToUpper(name)
	if name == "UID" {
		var sub string
		sub, args, _ = strings.Cut(args, " ")
		name += " " + strings.ToUpper(sub)
	}
	return tag, name, args, true
}

// appendVerdict returns the NO text for an APPEND whose first line is args,
// or "" to forward it.
func (r *IMAPRules) appendVerdict(args string, first []byte) string {
	rest, ok := skipMailbox(args)
	if !ok {
		return ""
	}
	return r.messageVerdict(rest, first)
}

// messageVerdict checks one message of an APPEND: rest is its part of the
// line after the mailbox ("(flags) date {size}"), line the whole line, whose
// literal is the message.
func (r *IMAPRules) messageVerdict(rest string, line []byte) string {
	rest = strings.TrimLeft(rest, " ")
	if strings.HasPrefix(rest, "(") {
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return ""
		}
		reject := r.RejectFlag
		if reject == nil {
			reject = ZimbraTagFlag
		}
		for _, f := range strings.Fields(rest[1:end]) {
			if reject(f) {
				return "APPEND failed"
			}
		}
	}
	if n, _ := literalAt(line); r.MaxLiteral > 0 && n > r.MaxLiteral {
		return "maximum message size exceeded"
	}
	return ""
}

// skipMailbox skips the mailbox argument (atom or quoted string) and returns
// the rest; ok is false for a literal mailbox or a malformed one.
func skipMailbox(args string) (string, bool) {
	if args == "" || args[0] == '{' || args[0] == '~' {
		return "", false
	}
	if args[0] != '"' {
		i := strings.IndexByte(args, ' ')
		if i < 0 {
			return "", true
		}
		return args[i:], true
	}
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case '\\':
			i++
		case '"':
			return args[i+1:], true
		}
	}
	return "", false
}

// pumpCommands forwards client commands to the server through w, applying
// the rules. It returns nil when the client ended its side cleanly.
func (r *IMAPRules) pumpCommands(pc *pconn, br *bufio.Reader, w io.Writer) error {
	var (
		lastKey     string
		repeats     int
		saslPending bool // AUTHENTICATE PLAIN waits for its response line
	)
	for {
		line, err := readLine(br)
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		tag, name, args, ok := parseCommand(line)
		if r.FetchPerAccount {
			var acct string
			switch {
			case saslPending && !ok:
				acct, _ = loginAccount("", string(line))
				saslPending = false
			case ok && (name == "LOGIN" || name == "AUTHENTICATE"):
				acct, saslPending = loginAccount(name, args)
			}
			if acct != "" {
				pc.fetchMu.Lock()
				pc.account = acct
				pc.fetchMu.Unlock()
			}
			if ok && (name == "FETCH" || name == "UID FETCH") && expensiveFetch(args) {
				if err := r.holdFetch(pc, tag); err != nil {
					return err
				}
			}
		}
		if ok && r.RepeatLimit > 0 {
			key := name
			if !r.argsIgnored(name) {
				key += " " + strings.TrimRight(args, "\r\n")
			}
			if key == lastKey {
				repeats++
			} else {
				lastKey, repeats = key, 1
			}
			if repeats > r.RepeatLimit {
				pc.p.c.dropped.Add(1)
				_ = pc.writeClient([]byte("* BYE too many repeated " + name + " requests dropping connection\r\n"))
				pc.shutdown()
				return errFault
			}
		}
		if ok && r.CutAnswer != nil && r.CutAnswer(name, strings.TrimRight(args, "\r\n")) {
			pc.cutTag.Store(tag + " ")
		}
		if n, sync := literalAt(line); ok && name == "APPEND" && n >= 0 && !sync {
			whole, text, msgs, err := r.readAppend(br, args, line, w)
			pc.p.c.appends.Add(1)
			pc.p.c.appendMsgs.Add(int64(msgs))
			if err != nil {
				return err
			}
			if whole == nil {
				continue // too big to hold: forwarded unchecked past its first message
			}
			if text == "" {
				if _, err := w.Write(whole); err != nil {
					return err
				}
				continue
			}
			if err := r.refuseAppend(pc, tag, text); err != nil {
				return err
			}
			continue
		}
		if ok && name == "APPEND" {
			pc.p.c.appends.Add(1)
			pc.p.c.appendMsgs.Add(1)
			if text := r.appendVerdict(args, line); text != "" {
				if err := swallow(br, line); err != nil {
					return err
				}
				if err := r.refuseAppend(pc, tag, text); err != nil {
					return err
				}
				continue
			}
		}
		if err := forwardCommand(br, line, w); err != nil {
			return err
		}
	}
}

// refuseAppend answers an APPEND the rules refuse, counting the error for
// MaxConsecutiveErrors (errFault when that drops the connection).
func (r *IMAPRules) refuseAppend(pc *pconn, tag, text string) error {
	pc.p.c.rejected.Add(1)
	if err := pc.writeClient([]byte(tag + " NO " + text + "\r\n")); err != nil {
		return err
	}
	if r.countAnswer(pc, answerError) {
		r.dropForErrors(pc)
		return errFault
	}
	return nil
}

// maxBufferedCommand bounds an APPEND with non-synchronizing literals that
// the proxy reads whole to check each of its messages.
const maxBufferedCommand = 64 << 20

// readAppend reads a whole APPEND (MULTIAPPEND too) whose first line is line
// and whose literals are non-synchronizing, and returns its bytes with the
// NO text of its first refused message ("" when none is refused). A command
// larger than maxBufferedCommand is forwarded to w as it is read once its
// first message passed, and whole is nil.
func (r *IMAPRules) readAppend(br *bufio.Reader, args string, line []byte, w io.Writer) (whole []byte, text string, msgs int, err error) {
	text = r.appendVerdict(args, line)
	whole = append(whole, line...)
	for {
		n, sync := literalAt(line)
		if n < 0 {
			return whole, text, msgs, nil
		}
		if sync {
			// The client waits for "+": the server must see this part now.
			if text != "" {
				return whole, text, msgs, nil
			}
			if _, err := w.Write(whole); err != nil {
				return nil, "", msgs, err
			}
			return nil, "", msgs + 1, forwardCommand(br, line, w)
		}
		if int64(len(whole))+n > maxBufferedCommand && text == "" {
			if _, err := w.Write(whole); err != nil {
				return nil, "", msgs, err
			}
			if _, err := io.CopyN(w, br, n); err != nil {
				return nil, "", msgs, err
			}
			if line, err = readLine(br); err != nil {
				_, _ = w.Write(line)
				return nil, "", msgs, err
			}
			return nil, "", msgs + 1, forwardCommand(br, line, w)
		}
		msgs++
		if text != "" {
			// Refused already: read the rest without keeping it.
			whole = whole[:0]
			if _, err := io.CopyN(io.Discard, br, n); err != nil {
				return nil, "", msgs, err
			}
		} else {
			// Grow with what arrives, not with what the line claims.
			buf := bytes.NewBuffer(whole)
			if _, err := io.CopyN(buf, br, n); err != nil {
				return nil, "", msgs, err
			}
			whole = buf.Bytes()
		}
		if line, err = readLine(br); err != nil {
			return nil, "", msgs, err
		}
		if text == "" {
			whole = append(whole, line...)
		}
		if text == "" && len(bytes.TrimSpace(line)) > 0 {
			text = r.messageVerdict(string(line), line)
		}
	}
}

// forwardCommand writes line and, while it ends with a literal, the literal
// and the following line.
func forwardCommand(br *bufio.Reader, line []byte, w io.Writer) error {
	for {
		if _, err := w.Write(line); err != nil {
			return err
		}
		n, _ := literalAt(line)
		if n < 0 {
			return nil
		}
		if _, err := io.CopyN(w, br, n); err != nil {
			return err
		}
		var err error
		if line, err = readLine(br); err != nil {
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			return err
		}
	}
}

// swallow consumes the rest of a refused command: non-synchronizing literals
// and their continuation lines. A synchronizing literal is never sent by a
// client that gets a tagged answer instead of "+".
func swallow(br *bufio.Reader, line []byte) error {
	for {
		n, sync := literalAt(line)
		if n < 0 || sync {
			return nil
		}
		if _, err := io.CopyN(io.Discard, br, n); err != nil {
			return err
		}
		var err error
		if line, err = readLine(br); err != nil {
			return err
		}
	}
}

// pumpResponses forwards server responses to the client through w, one whole
// response (literals included) per Write so that answers from the rules never
// land inside one, and applies MaxConsecutiveErrors.
func (r *IMAPRules) pumpResponses(pc *pconn, br *bufio.Reader, w io.Writer) error {
	var (
		buf     []byte
		first   = true     // the next line starts a response
		kind    answerKind // of the current response, from its first line
		fetched bool       // the current response answers the held FETCH
	)
	for {
		line, err := readLine(br)
		if first {
			kind, first = classifyAnswer(line), false
			fetched = pc.fetchAnswered(line)
			if cut, _ := pc.cutTag.Load().(string); cut != "" && bytes.HasPrefix(line, []byte(cut)) {
				pc.p.c.cuts.Add(1)
				pc.shutdown()
				return errFault
			}
		}
		buf = append(buf, line...)
		if err != nil {
			if len(buf) > 0 {
				_, _ = w.Write(buf)
			}
			return err
		}
		n, _ := literalAt(line)
		if n > maxBufferedLiteral {
			// Too big to hold: stream it, giving up atomicity.
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
			if _, err := io.CopyN(w, br, n); err != nil {
				return err
			}
			continue
		}
		if n >= 0 {
			start := len(buf)
			buf = append(buf, make([]byte, n)...)
			if m, err := io.ReadFull(br, buf[start:]); err != nil {
				_, _ = w.Write(buf[:start+m])
				return err
			}
			continue
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if fetched {
			pc.releaseFetch()
		}
		buf, first = buf[:0], true
		if cap(buf) > 1<<20 {
			buf = nil
		}
		if r.countAnswer(pc, kind) {
			r.dropForErrors(pc)
			return errFault
		}
	}
}
