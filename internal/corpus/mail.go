package corpus

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net/url"
	"strings"
	"time"
)

// Languages of generated text.
const (
	langEN = iota
	langDE
	langFR
	langEL
	langJA
	langRU
	langEmoji
	numLangs
)

var vocab = [numLangs][]string{
	langEN:    strings.Fields("the meeting project report budget review please find attached invoice schedule team update release deadline customer server migration mailbox calendar contact quarter results thanks regards question answer draft proposal agenda minutes travel office holiday weekend network backup storage issue ticket"),
	langDE:    strings.Fields("Besprechung Übersicht Rechnung Grüße Änderung bitte danke für die Woche nächste Straße Größe Prüfung Angebot Lieferung Kündigung Frühstück Bürozeiten Tagesordnung Mitarbeiter Ärger schön müssen können Zusammenfassung"),
	langFR:    strings.Fields("réunion facture reçu déjà été très à bientôt cordialement prochaine semaine garçon élève façon ça leçon où être même problème résumé délai équipe projet sécurité mise à jour"),
	langEL:    strings.Fields("καλημέρα συνάντηση τιμολόγιο ευχαριστώ παρακαλώ εβδομάδα έργο ομάδα αναφορά προθεσμία πελάτης διακομιστής ημερολόγιο επαφή ερώτηση απάντηση"),
	langJA:    strings.Fields("会議 請求書 よろしく お願いします 来週 プロジェクト 報告 締め切り お客様 サーバー 移行 カレンダー 連絡先 質問 回答 ありがとう ございます 資料 添付"),
	langRU:    strings.Fields("встреча счёт спасибо пожалуйста неделя проект команда отчёт срок клиент сервер перенос календарь контакт вопрос ответ привет уважением"),
	langEmoji: strings.Fields("party 🎉 coffee ☕ ok 👍 launch 🚀 great ✨ sun ☀️ pizza 🍕 deadline ⏰ thanks 🙏 love ❤️ done ✅"),
}

var replyPrefix = [numLangs]string{"Re: ", "AW: ", "RE: ", "Απ: ", "Re: ", "Re: ", "Re: "}

var people = []struct{ name, addr string }{
	{"John Smith", "john.smith@example.com"},
	{"Alice Johnson", "alice@example.org"},
	{"Jürgen Müller", "juergen.mueller@example.de"},
	{"François Lefèvre", "f.lefevre@example.fr"},
	{"Γιώργος Παπαδόπουλος", "georgios@example.gr"},
	{"山田 太郎", "yamada@example.jp"},
	{"Дмитрий Иванов", "dmitry@example.ru"},
	{"Anna 🌸 Schmidt", "anna@example.net"},
	{"O'Brien, Pat", "pat.obrien@example.ie"},
	{"Zoë Ångström", "zoe@example.se"},
	{"", "noreply@example.net"},
	{"Support Team", "support@example.com"},
}

func pickLang(r *rand.Rand, folder string) int {
	switch folder {
	case "Ελληνικά":
		return langEL
	case "日本語 メール":
		return langJA
	case "Reçus & Factures":
		return langFR
	case "Lists/golang-nuts", "Lists/debian-devel":
		return langEN
	}
	x := r.IntN(100)
	switch {
	case x < 60:
		return langEN
	case x < 72:
		return langDE
	case x < 82:
		return langFR
	case x < 87:
		return langEL
	case x < 92:
		return langJA
	case x < 97:
		return langRU
	}
	return langEmoji
}

func subjectFor(r *rand.Rand, lang int) string {
	v := vocab[lang]
	n := 2 + r.IntN(6)
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v[r.IntN(len(v))])
	}
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, " #%d", r.IntN(10000))
	}
	return b.String()
}

// crlf is the line ending of all message bytes.
const crlf = "\r\n"

// msgWriter accumulates a message.
type msgWriter struct{ bytes.Buffer }

func (w *msgWriter) line(s string) { w.WriteString(s); w.WriteString(crlf) }
func (w *msgWriter) hdr(k, v string) {
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(v)
	w.WriteString(crlf)
}
func (w *msgWriter) linef(f string, a ...any)   { fmt.Fprintf(w, f, a...); w.WriteString(crlf) }
func (w *msgWriter) hdrf(k, f string, a ...any) { w.hdr(k, fmt.Sprintf(f, a...)) }
func (w *msgWriter) boundary(b string, last bool) {
	w.line("--" + b + map[bool]string{true: "--"}[last])
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// encodeWord encodes s as RFC 2047 words when it is not ASCII; iso-8859-1
// is used for Latin-1 text half of the time.
func encodeWord(r *rand.Rand, s string) string {
	if isASCII(s) {
		return s
	}
	if latin1, ok := toLatin1(s); ok && r.IntN(2) == 0 {
		return mime.QEncoding.Encode("iso-8859-1", string(latin1))
	}
	if r.IntN(2) == 0 {
		return mime.QEncoding.Encode("utf-8", s)
	}
	return mime.BEncoding.Encode("utf-8", s)
}

func toLatin1(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, c := range s {
		if c > 0xff {
			return nil, false
		}
		out = append(out, byte(c))
	}
	return out, true
}

func address(r *rand.Rand, name, addr string) string {
	if name == "" {
		return "<" + addr + ">"
	}
	if isASCII(name) {
		if strings.ContainsAny(name, ",'.") {
			return fmt.Sprintf("%q <%s>", name, addr)
		}
		return name + " <" + addr + ">"
	}
	return encodeWord(r, name) + " <" + addr + ">"
}

// text returns about n bytes of text in lang as CRLF lines of at most ~72
// characters, with paragraphs.
func text(r *rand.Rand, lang, n int) string {
	v := vocab[lang]
	var b strings.Builder
	b.Grow(n + 80)
	col := 0
	for b.Len() < n {
		w := v[r.IntN(len(v))]
		if col+len(w) > 72 {
			b.WriteString(crlf)
			col = 0
			if r.IntN(6) == 0 {
				b.WriteString(crlf)
			}
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteString(crlf)
	return b.String()
}

// logNormal draws a size with the given median and sigma, clamped.
func logNormal(r *rand.Rand, median, sigma float64, lo, hi int) int {
	v := int(median * math.Exp(sigma*r.NormFloat64()))
	return max(lo, min(hi, v))
}

// textPart writes headers (Content-Type and Content-Transfer-Encoding) and
// the encoded body of one text part.
func textPart(w *msgWriter, r *rand.Rand, subtype string, lang int, body string) {
	ascii := isASCII(body)
	switch {
	case ascii:
		w.hdrf("Content-Type", "text/%s; charset=us-ascii", subtype)
		w.hdr("Content-Transfer-Encoding", "7bit")
		w.line("")
		w.WriteString(body)
		return
	case lang == langDE || lang == langFR:
		if latin1, ok := toLatin1(body); ok && r.IntN(3) == 0 {
			w.hdrf("Content-Type", "text/%s; charset=iso-8859-1", subtype)
			w.hdr("Content-Transfer-Encoding", "quoted-printable")
			w.line("")
			writeQP(w, latin1)
			return
		}
		if r.IntN(4) == 0 {
			w.hdrf("Content-Type", "text/%s; charset=utf-8", subtype)
			w.hdr("Content-Transfer-Encoding", "8bit")
			w.line("")
			w.WriteString(body)
			return
		}
		fallthrough
	case r.IntN(2) == 0:
		w.hdrf("Content-Type", "text/%s; charset=utf-8", subtype)
		w.hdr("Content-Transfer-Encoding", "quoted-printable")
		w.line("")
		writeQP(w, []byte(body))
	default:
		w.hdrf("Content-Type", "text/%s; charset=utf-8", subtype)
		w.hdr("Content-Transfer-Encoding", "base64")
		w.line("")
		writeBase64(w, []byte(body))
	}
}

func writeQP(w *msgWriter, b []byte) {
	q := quotedprintable.NewWriter(w)
	q.Write(b)
	q.Close()
	if !bytes.HasSuffix(w.Bytes(), []byte(crlf)) {
		w.WriteString(crlf)
	}
}

// writeBase64 writes b as base64 in 76-character CRLF lines.
func writeBase64(w *msgWriter, b []byte) {
	var line [78]byte
	for len(b) > 0 {
		n := min(57, len(b))
		m := base64.StdEncoding.EncodedLen(n)
		base64.StdEncoding.Encode(line[:], b[:n])
		line[m], line[m+1] = '\r', '\n'
		w.Write(line[:m+2])
		b = b[n:]
	}
}

// randomBytes returns n pseudo-random bytes, fast.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, (n+7)&^7)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

func html(r *rand.Rand, lang int, body string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><style>p{font-family:Arial,sans-serif;color:#333}</style></head><body>\r\n")
	for _, para := range strings.Split(body, crlf+crlf) {
		if para = strings.TrimSpace(para); para == "" {
			continue
		}
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(para, crlf, "<br>\r\n"))
		b.WriteString("</p>\r\n")
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "<table border=\"0\"><tr><td><a href=\"https://www.example.com/track?id=%x\">%s</a></td></tr></table>\r\n", r.Uint64(), vocab[lang][0])
	}
	b.WriteString("</body></html>\r\n")
	return b.String()
}

var attachNames = []struct{ name, ctype string }{
	{"report.pdf", "application/pdf"},
	{"photo.jpg", "image/jpeg"},
	{"archive.zip", "application/zip"},
	{"data.bin", "application/octet-stream"},
	{"Präsentation Q3.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
	{"reçu n°42.pdf", "application/pdf"},
	{"請求書.pdf", "application/pdf"},
	{"Τιμολόγιο 2023.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	{"отчёт.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	{"scan 2019-05-03.png", "image/png"},
}

// attachmentSize draws the decoded size of an attachment whose encoded
// size follows the reference mailbox: 65 % 3–300 KB, 32 % 0.3–1.2 MB, 3 % 1.5–4.5 MB.
func attachmentSize(r *rand.Rand) int {
	var enc int
	switch x := r.IntN(100); {
	case x < 65:
		enc = int(3000 * math.Pow(100, r.Float64())) // log-uniform 3 KB–300 KB
	case x < 97:
		enc = 300_000 + r.IntN(900_000)
	default:
		enc = 1_500_000 + r.IntN(3_000_000)
	}
	return enc / 78 * 57
}

// attachmentCount draws 1 (65 %), 2 (25 %) or 3 (10 %) attachments.
func attachmentCount(r *rand.Rand) int {
	switch x := r.IntN(20); {
	case x < 13:
		return 1
	case x < 18:
		return 2
	}
	return 3
}

// attachment writes one base64 attachment part (headers and body).
func attachment(w *msgWriter, r *rand.Rand, size int) {
	a := attachNames[r.IntN(len(attachNames))]
	if isASCII(a.name) {
		w.hdrf("Content-Type", "%s; name=%q", a.ctype, a.name)
		w.hdrf("Content-Disposition", "attachment; filename=%q; size=%d", a.name, size)
	} else {
		// RFC 2231 filename, plus the RFC 2047 name= most mailers add.
		w.hdrf("Content-Type", "%s;\r\n name=\"%s\"", a.ctype, mime.BEncoding.Encode("utf-8", a.name))
		w.hdrf("Content-Disposition", "attachment;\r\n filename*=utf-8''%s", strings.ReplaceAll(url.PathEscape(a.name), "+", "%2B"))
	}
	w.hdr("Content-Transfer-Encoding", "base64")
	w.line("")
	writeRandomBase64(w, r, size)
}

// writeRandomBase64 writes n random bytes as base64 lines without holding
// them all in memory.
func writeRandomBase64(w *msgWriter, r *rand.Rand, n int) {
	w.Grow((n+56)/57*78 + 2)
	var buf [57 * 64]byte
	for n > 0 {
		k := min(n, len(buf))
		for i := 0; i < k; i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], r.Uint64())
		}
		writeBase64(w, buf[:k])
		n -= k
	}
}

var mailers = []string{"Zimbra 8.8.15_GA_4484 (ZimbraWebClient - FF115 (Linux)/8.8.15_GA_4481)", "Microsoft Outlook 16.0", "Apple Mail (2.3654.120.0.1.13)", "Mozilla Thunderbird 115.3.1", "Roundcube Webmail/1.6.5"}

var relays = []string{"mx1.example.org", "mta-in.example.net", "smtp.gateway.example.com", "mail-ej1-f41.example.com", "zimbra.example.com"}

// render builds the bytes of one message from its plan.
func render(user string, seed int64, p *msgPlan) Message {
	m := Message{Folder: p.folder, Flags: p.flags, InternalDate: p.internal, Kind: p.kind}
	r := rng(seed, streamRender+p.idx)
	if name, ok := strings.CutPrefix(strings.TrimSuffix(p.kind, "+dup"), "edge/"); ok {
		m.Raw = renderEdge(name, r, p)
		return m
	}
	var w msgWriter
	w.Grow(4096)
	writeHeaders(&w, r, user, p)
	body := func() string {
		if p.small {
			return text(r, p.lang, 200+r.IntN(600))
		}
		return text(r, p.lang, logNormal(r, 1500, 1.0, 60, 400_000))
	}
	switch strings.TrimSuffix(p.kind, "+dup") {
	case "text":
		textPart(&w, r, "plain", p.lang, body())
	case "alternative":
		writeAlternative(&w, r, p.lang, body())
	case "mixed", "huge":
		b := fmt.Sprintf("----=_Part_%d_%x", p.idx, r.Uint32())
		w.hdrf("Content-Type", "multipart/mixed;\r\n boundary=\"%s\"", b)
		w.line("")
		w.line("This is a multi-part message in MIME format.")
		w.line("")
		w.boundary(b, false)
		if r.IntN(2) == 0 {
			textPart(&w, r, "plain", p.lang, body())
		} else {
			writeAlternative(&w, r, p.lang, body())
		}
		if p.kind == "huge" {
			w.boundary(b, false)
			attachment(&w, r, 38_000_000) // ≥ 50 MB once encoded
		} else {
			for range attachmentCount(r) {
				w.boundary(b, false)
				attachment(&w, r, attachmentSize(r))
			}
		}
		w.boundary(b, true)
	case "forward":
		b := fmt.Sprintf("=_fwd_%x", r.Uint64())
		w.hdrf("Content-Type", "multipart/mixed; boundary=\"%s\"", b)
		w.line("")
		w.boundary(b, false)
		textPart(&w, r, "plain", p.lang, "Please see the forwarded message below."+crlf+crlf+body())
		w.boundary(b, false)
		w.hdr("Content-Type", "message/rfc822")
		w.hdr("Content-Disposition", "attachment; filename=\"forwarded message.eml\"")
		w.line("")
		inner := msgPlan{inner: true, kind: "text", idx: p.idx, lang: p.lang, date: p.date.AddDate(0, 0, -1), subject: subjectFor(r, p.lang), msgID: fmt.Sprintf("%x.inner@example.org", r.Uint64())}
		writeHeaders(&w, r, "someone", &inner)
		if r.IntN(2) == 0 {
			textPart(&w, r, "plain", p.lang, body())
		} else {
			writeAlternative(&w, r, p.lang, body())
		}
		w.boundary(b, true)
	}
	m.Raw = w.Bytes()
	return m
}

func writeAlternative(w *msgWriter, r *rand.Rand, lang int, body string) {
	b := fmt.Sprintf("_alt_%x_", r.Uint64())
	w.hdrf("Content-Type", "multipart/alternative; boundary=\"%s\"", b)
	w.line("")
	w.boundary(b, false)
	textPart(w, r, "plain", lang, body)
	w.boundary(b, false)
	textPart(w, r, "html", lang, html(r, lang, body))
	w.boundary(b, true)
}

// writeHeaders writes the header block of a generated message up to, not
// including, the Content-Type.
func writeHeaders(w *msgWriter, r *rand.Rand, user string, p *msgPlan) {
	me := user
	if !strings.Contains(me, "@") {
		me += "@example.com"
	}
	from := people[r.IntN(len(people))]
	to := struct{ name, addr string }{"", me}
	if p.out {
		from, to = to, from
	}
	if !p.out && !p.inner {
		w.hdrf("Return-Path", "<%s>", from.addr)
	}
	if !p.draft && !p.inner {
		hops := 1 + r.IntN(4)
		t := p.date.Add(time.Duration(hops) * time.Second)
		for i := hops; i > 0; i-- {
			relay := relays[r.IntN(len(relays))]
			w.hdrf("Received", "from %s (%s [192.0.2.%d])\r\n\tby %s (Postfix) with ESMTPS id %X\r\n\tfor <%s>; %s",
				relays[r.IntN(len(relays))], relay, 1+r.IntN(254), relay, r.Uint32(), to.addr, t.Format(dateLayout))
			t = t.Add(-time.Second)
		}
		if r.IntN(10) < 4 {
			w.hdrf("DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=sel%d;\r\n\th=from:to:subject:date:message-id; bh=%s;\r\n\tb=%s",
				strings.SplitN(from.addr, "@", 2)[1], r.IntN(3), base64.StdEncoding.EncodeToString(randomBytes(r, 32)),
				base64.StdEncoding.EncodeToString(randomBytes(r, 128)))
		}
	}
	if p.list != "" {
		w.hdr("List-Id", p.list)
		w.hdrf("List-Unsubscribe", "<mailto:unsubscribe-%x@lists.example.org>", r.Uint32())
		w.hdr("Precedence", "list")
	}
	if p.msgID != "" {
		w.hdrf("Message-ID", "<%s>", p.msgID)
	}
	if p.badDate {
		w.hdr("Date", badDates[r.IntN(len(badDates))])
	} else {
		w.hdr("Date", p.date.Format(dateLayout))
	}
	w.hdr("From", address(r, from.name, from.addr))
	w.hdr("To", address(r, to.name, to.addr))
	if r.IntN(5) == 0 {
		c := people[r.IntN(len(people))]
		w.hdr("Cc", address(r, c.name, c.addr))
	}
	w.hdr("Subject", foldSubject(encodeWord(r, p.subject)))
	if p.parentID != "" {
		w.hdrf("In-Reply-To", "<%s>", p.parentID)
		var refs []string
		for _, id := range p.refs {
			refs = append(refs, "<"+id+">")
		}
		w.hdr("References", strings.Join(refs, "\r\n "))
	}
	if r.IntN(3) > 0 {
		w.hdr("X-Mailer", mailers[r.IntN(len(mailers))])
	}
	w.hdr("MIME-Version", "1.0")
}

// foldSubject folds long encoded subjects between encoded words.
func foldSubject(s string) string {
	if len(s) < 76 || !strings.Contains(s, "?= =?") {
		return s
	}
	return strings.ReplaceAll(s, "?= =?", "?=\r\n =?")
}

const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

var badDates = []string{"31 Feb 2019 25:61:00 +9999", "yesterday afternoon", "Mon, 32 Foo 2018 10:00:00", "0000-00-00 00:00:00"}
