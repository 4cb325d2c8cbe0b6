package corpus

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// An edgeCase renders one malformed or unusual message. v is the variant
// number, so that one template can give several distinct messages.
type edgeCase struct {
	name string
	v    int
	gen  func(e *edgeCtx)
}

// edgeCtx is what an edge-case template writes with.
type edgeCtx struct {
	msgWriter
	r *rand.Rand
	p *msgPlan
	v int
}

// std writes the usual top headers, leaving out those named in skip.
func (e *edgeCtx) std(subject string, skip ...string) {
	has := func(k string) bool {
		for _, s := range skip {
			if s == k {
				return true
			}
		}
		return false
	}
	if !has("Received") {
		e.hdrf("Received", "from mx1.example.org (mx1.example.org [192.0.2.7])\r\n\tby zimbra.example.com (Postfix) with ESMTP id %X; %s", e.r.Uint32(), e.p.date.Format(dateLayout))
	}
	if !has("Message-ID") && e.p.msgID != "" {
		e.hdrf("Message-ID", "<%s>", e.p.msgID)
	}
	if !has("Date") {
		e.hdr("Date", e.p.date.Format(dateLayout))
	}
	if !has("From") {
		e.hdr("From", "Edge Sender <edge@example.org>")
	}
	if !has("To") {
		e.hdr("To", "user <user@example.com>")
	}
	if !has("Subject") {
		e.hdr("Subject", subject)
	}
	if !has("MIME-Version") {
		e.hdr("MIME-Version", "1.0")
	}
}

func (e *edgeCtx) plain(body string) {
	e.hdr("Content-Type", "text/plain; charset=utf-8")
	e.line("")
	e.WriteString(body)
}

// withAttachment writes a multipart/mixed message: a text part, then the
// part that part writes (its headers and body).
func (e *edgeCtx) withAttachment(subject, boundary string, part func()) {
	e.std(subject)
	e.hdrf("Content-Type", "multipart/mixed; boundary=\"%s\"", boundary)
	e.line("")
	e.line("--" + boundary)
	e.plain(e.body())
	e.line("--" + boundary)
	part()
	e.line("--" + boundary + "--")
}

func (e *edgeCtx) body() string { return text(e.r, langEN, 300+e.r.IntN(1500)) }

func (e *edgeCtx) b64(n int) { writeBase64(&e.msgWriter, randomBytes(e.r, n)) }

// edgeTemplates lists the templates with their number of variants.
var edgeTemplates = []struct {
	name     string
	variants int
	gen      func(e *edgeCtx)
}{
	{"bad-boundary", 2, func(e *edgeCtx) {
		e.std("bad boundary")
		e.hdr("Content-Type", `multipart/mixed; boundary="declared-boundary"`)
		e.line("")
		used := "other-boundary"
		if e.v == 1 {
			used = "DECLARED-BOUNDARY"
		}
		e.line("--" + used)
		e.plain(e.body())
		e.line("--" + used + "--")
	}},
	{"missing-final-boundary", 2, func(e *edgeCtx) {
		e.std("missing final boundary")
		e.hdr("Content-Type", `multipart/mixed; boundary="b1"`)
		e.line("")
		e.line("--b1")
		e.plain(e.body())
		e.line("--b1")
		e.hdr("Content-Type", "application/octet-stream")
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		e.b64(2000)
		if e.v == 1 {
			e.WriteString("--b1--") // closing delimiter without CRLF at EOF
		}
	}},
	{"nested-same-boundary", 1, func(e *edgeCtx) {
		e.std("nested multipart reusing the parent boundary")
		e.hdr("Content-Type", `multipart/mixed; boundary="same"`)
		e.line("")
		e.line("--same")
		e.hdr("Content-Type", `multipart/alternative; boundary="same"`)
		e.line("")
		e.line("--same")
		e.plain(e.body())
		e.line("--same--")
		e.line("--same--")
	}},
	{"boundary-whitespace", 2, func(e *edgeCtx) {
		e.std("boundary oddities")
		if e.v == 0 {
			e.hdr("Content-Type", `multipart/mixed; boundary="ws"`)
			e.line("")
			e.line("--ws   ")
			e.plain(e.body())
			e.line("--ws--  \t")
			return
		}
		e.hdr("Content-Type", `multipart/mixed; boundary==_x:y'(z)`)
		e.line("")
		e.line("--=_x:y'(z)")
		e.plain(e.body())
		e.line("--=_x:y'(z)--")
	}},
	{"no-boundary-param", 1, func(e *edgeCtx) {
		e.std("multipart without boundary")
		e.hdr("Content-Type", "multipart/mixed")
		e.line("")
		e.WriteString(e.body())
	}},
	{"empty-multipart", 1, func(e *edgeCtx) {
		e.std("empty multipart")
		e.hdr("Content-Type", `multipart/mixed; boundary="empty"`)
		e.line("")
		e.line("--empty--")
	}},
	{"preamble-epilogue", 1, func(e *edgeCtx) {
		e.std("preamble and epilogue")
		e.hdr("Content-Type", `multipart/mixed; boundary="pe"`)
		e.line("")
		e.line("This is the preamble. It should be ignored.")
		e.line("--pe")
		e.plain(e.body())
		e.line("--pe--")
		e.line("This is the epilogue, also ignored.")
	}},
	{"broken-folding", 3, func(e *edgeCtx) {
		switch e.v {
		case 0: // a continuation line without leading white space
			e.std("", "Subject")
			e.line("Subject: a subject that was folded")
			e.line("without leading white space")
		case 1: // a white-space-only continuation line
			e.std("", "Subject")
			e.line("Subject: folded with")
			e.line(" \t")
			e.line(" a blank-looking line")
		case 2: // the first line is a continuation
			e.line("  X-Orphan: continuation before any header")
			e.std("first line is a continuation")
		}
		e.plain(e.body())
	}},
	{"long-header-line", 2, func(e *edgeCtx) {
		if e.v == 0 {
			e.std("very long References")
			var refs []string
			for i := 0; i < 300; i++ {
				refs = append(refs, fmt.Sprintf("<%x.%d@example.org>", e.r.Uint64(), i))
			}
			e.hdr("References", strings.Join(refs, " "))
		} else {
			e.std(strings.Repeat("long subject ", 160))
		}
		e.plain(e.body())
	}},
	{"many-received", 1, func(e *edgeCtx) {
		for i := 0; i < 500; i++ {
			e.hdrf("Received", "from hop%d.example.net by hop%d.example.net; %s", i, i+1, e.p.date.Format(dateLayout))
		}
		e.std("500 Received headers")
		e.plain(e.body())
	}},
	{"duplicate-headers", 2, func(e *edgeCtx) {
		e.std("first subject")
		if e.v == 0 {
			e.hdr("Subject", "second subject")
			e.hdr("Date", "Thu, 01 Jan 2015 00:00:00 +0000")
		} else {
			e.hdrf("Message-ID", "<second.%x@example.org>", e.r.Uint64())
		}
		e.plain(e.body())
	}},
	{"missing-content-type", 2, func(e *edgeCtx) {
		if e.v == 0 {
			e.std("no MIME headers, 8-bit body", "MIME-Version")
			e.line("")
			e.WriteString(text(e.r, langDE, 800))
			return
		}
		e.std("base64 without Content-Type")
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		writeBase64(&e.msgWriter, []byte(text(e.r, langFR, 600)))
	}},
	{"bad-charset", 3, func(e *edgeCtx) {
		e.std("bad charset")
		switch e.v {
		case 0:
			e.hdr("Content-Type", "text/plain; charset=x-unknown-charset-42")
		case 1:
			e.hdr("Content-Type", `text/plain; charset="utf8 "`)
		case 2:
			e.hdr("Content-Type", "text/plain; charset=us-ascii")
		}
		e.hdr("Content-Transfer-Encoding", "8bit")
		e.line("")
		e.WriteString(text(e.r, langRU, 700))
	}},
	{"bad-transfer-encoding", 3, func(e *edgeCtx) {
		e.std("bad transfer encoding")
		switch e.v {
		case 0:
			e.hdr("Content-Type", "application/octet-stream")
			e.hdr("Content-Transfer-Encoding", "base64")
			e.line("")
			e.line("SGVsbG8gd29ybGQ!!!$$$ not base64 at all ***")
			e.b64(300)
		case 1:
			e.hdr("Content-Type", "text/plain; charset=utf-8")
			e.hdr("Content-Transfer-Encoding", "quoted-printable")
			e.line("")
			e.line("Bad escapes =ZZ =4 =\t and a soft break at the very end=")
		case 2:
			e.hdr("Content-Type", "text/plain")
			e.hdr("Content-Transfer-Encoding", "x-uuencode")
			e.line("")
			e.line("begin 644 hello.txt")
			e.line("+:&5L;&\\@=V]R;&0*")
			e.line("`")
			e.line("end")
		}
	}},
	{"8bit-header", 3, func(e *edgeCtx) {
		switch e.v {
		case 0:
			e.std("Grüße aus Köln – raw UTF-8 subject ✓")
		case 1:
			e.std("raw latin-1 name", "From")
			e.hdr("From", "J\xfcrgen M\xfcller <juergen@example.de>")
		case 2:
			e.std("\x1b$B$3$s$K$A$O\x1b(B raw ISO-2022-JP")
		}
		e.plain(e.body())
	}},
	{"8bit-filename", 2, func(e *edgeCtx) {
		name := "Übersicht März.pdf"
		if e.v == 1 {
			name = "R\xe9sum\xe9.pdf"
		}
		e.withAttachment("8-bit attachment filename", "f8", func() {
			e.hdrf("Content-Type", "application/pdf; name=\"%s\"", name)
			e.hdrf("Content-Disposition", "attachment; filename=\"%s\"", name)
			e.hdr("Content-Transfer-Encoding", "base64")
			e.line("")
			e.b64(4000)
		})
	}},
	{"header-never-ends", 2, func(e *edgeCtx) {
		e.std("header block without an empty line")
		e.hdr("Content-Type", "text/plain")
		for i := 0; i < 20; i++ {
			e.hdr(fmt.Sprintf("X-Header-%d", i), fmt.Sprintf("value %d", i))
		}
		if e.v == 1 {
			e.WriteString("X-Last: no CRLF at the end")
		}
	}},
	{"exact-4096", 1, func(e *edgeCtx) { exactSize(e, 4096) }},
	{"exact-4097", 1, func(e *edgeCtx) { exactSize(e, 4097) }},
	{"no-headers", 1, func(e *edgeCtx) {
		e.line("")
		e.WriteString(e.body())
	}},
	{"headers-only", 1, func(e *edgeCtx) {
		e.std("headers and an empty body")
		e.hdr("Content-Type", "text/plain")
		e.line("")
	}},
	{"no-final-crlf", 1, func(e *edgeCtx) {
		e.std("last line without CRLF")
		e.plain(e.body())
		e.WriteString("-- the end, no line break")
	}},
	{"long-body-line", 1, func(e *edgeCtx) {
		e.std("a 200 KB body line")
		e.hdr("Content-Type", "text/plain")
		e.line("")
		e.line(strings.Repeat("abcdefghij", 20000))
	}},
	{"empty-subject-and-body", 1, func(e *edgeCtx) {
		e.std("")
		e.hdr("Content-Type", "text/plain")
		e.line("")
	}},
	{"bad-message-id", 3, func(e *edgeCtx) {
		e.std("bad Message-ID", "Message-ID")
		switch e.v {
		case 0:
			e.hdrf("Message-ID", "%x@no-brackets.example.org", e.r.Uint64())
		case 1:
			e.hdrf("Message-ID", "<with spaces %x @ example.org>", e.r.Uint64())
		case 2:
			e.hdrf("Message-ID", "<Grüße.%x@bücher.example>", e.r.Uint64())
		}
		e.plain(e.body())
	}},
	{"odd-date", 2, func(e *edgeCtx) {
		if e.v == 0 {
			e.std("no Date header", "Date")
		} else {
			e.std("a date in 2099", "Date")
			e.hdr("Date", "Fri, 01 Jan 2099 00:00:00 +0000")
		}
		e.plain(e.body())
	}},
	{"multipart-signed", 2, func(e *edgeCtx) {
		e.std("signed message")
		if e.v == 0 {
			e.hdr("Content-Type", `multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="sig"`)
		} else {
			e.hdr("Content-Type", `multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"`)
		}
		e.line("")
		e.line("--sig")
		e.plain(e.body())
		e.line("--sig")
		if e.v == 0 {
			e.hdr("Content-Type", "application/pgp-signature; name=\"signature.asc\"")
			e.line("")
			e.line("-----BEGIN PGP SIGNATURE-----")
			e.line("")
			e.b64(500)
			e.line("-----END PGP SIGNATURE-----")
		} else {
			e.hdr("Content-Type", "application/pkcs7-signature; name=\"smime.p7s\"")
			e.hdr("Content-Transfer-Encoding", "base64")
			e.line("")
			e.b64(3000)
		}
		e.line("--sig--")
	}},
	{"multipart-related", 1, func(e *edgeCtx) {
		e.std("HTML with an inline image")
		e.hdr("Content-Type", `multipart/related; type="text/html"; boundary="rel"`)
		e.line("")
		e.line("--rel")
		e.hdr("Content-Type", "text/html; charset=utf-8")
		e.line("")
		e.line(`<html><body><p>Logo: <img src="cid:logo.123@example.org"></p></body></html>`)
		e.line("--rel")
		e.hdr("Content-Type", "image/png")
		e.hdr("Content-ID", "<logo.123@example.org>")
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		e.b64(5000)
		e.line("--rel--")
	}},
	{"delivery-report", 1, func(e *edgeCtx) {
		e.std("Undelivered Mail Returned to Sender", "From")
		e.hdr("From", "MAILER-DAEMON@example.com (Mail Delivery System)")
		e.hdr("Content-Type", `multipart/report; report-type=delivery-status; boundary="dsn"`)
		e.line("")
		e.line("--dsn")
		e.plain("I'm sorry to have to inform you that your message could not be delivered." + crlf)
		e.line("--dsn")
		e.hdr("Content-Type", "message/delivery-status")
		e.line("")
		e.line("Reporting-MTA: dns; zimbra.example.com")
		e.line("")
		e.line("Final-Recipient: rfc822; nobody@example.invalid")
		e.line("Action: failed")
		e.line("Status: 5.1.1")
		e.line("--dsn")
		e.hdr("Content-Type", "text/rfc822-headers")
		e.line("")
		e.line("From: user@example.com")
		e.line("Subject: hello")
		e.line("--dsn--")
	}},
	{"calendar-invite", 1, func(e *edgeCtx) {
		e.std("Invitation: Weekly sync")
		e.hdr("Content-Type", `multipart/alternative; boundary="inv"`)
		e.line("")
		e.line("--inv")
		e.plain("You have been invited." + crlf)
		e.line("--inv")
		e.hdr("Content-Type", `text/calendar; charset=utf-8; method=REQUEST`)
		e.line("")
		e.line("BEGIN:VCALENDAR")
		e.line("METHOD:REQUEST")
		e.line("VERSION:2.0")
		e.line("PRODID:-//Zimbra//EN")
		e.line("BEGIN:VEVENT")
		e.linef("UID:%x@example.com", e.r.Uint64())
		e.line("DTSTART:20240102T100000Z")
		e.line("DTEND:20240102T110000Z")
		e.line("SUMMARY:Weekly sync")
		e.line("END:VEVENT")
		e.line("END:VCALENDAR")
		e.line("--inv--")
	}},
	{"nested-rfc822", 1, func(e *edgeCtx) {
		e.std("Fwd: Fwd: Fwd: nested three times")
		for depth := 0; depth < 3; depth++ {
			e.hdrf("Content-Type", `multipart/mixed; boundary="n%d"`, depth)
			e.line("")
			e.linef("--n%d", depth)
			e.plain("level " + fmt.Sprint(depth) + crlf)
			e.linef("--n%d", depth)
			e.hdr("Content-Type", "message/rfc822")
			e.line("")
			e.hdrf("Subject", "level %d", depth+1)
			e.hdr("From", "inner@example.org")
			e.hdr("MIME-Version", "1.0")
		}
		e.plain(e.body())
		for depth := 2; depth >= 0; depth-- {
			e.linef("--n%d--", depth)
		}
	}},
	{"deep-nesting", 1, func(e *edgeCtx) {
		e.std("60 nested multiparts")
		for i := 0; i < 60; i++ {
			e.hdrf("Content-Type", `multipart/mixed; boundary="d%d"`, i)
			e.line("")
			e.linef("--d%d", i)
		}
		e.plain("deep" + crlf)
		for i := 59; i >= 0; i-- {
			e.linef("--d%d--", i)
		}
	}},
	{"message-partial", 1, func(e *edgeCtx) {
		e.std("partial message 1/2")
		e.hdrf("Content-Type", `message/partial; id="%x@example.org"; number=1; total=2`, e.r.Uint64())
		e.line("")
		e.hdr("Subject", "inner")
		e.hdr("Content-Type", "text/plain")
		e.line("")
		e.WriteString(e.body())
	}},
	{"rfc2231-continuations", 2, func(e *edgeCtx) {
		e.withAttachment("RFC 2231 continuations", "c", func() {
			if e.v == 0 {
				e.hdr("Content-Type", "application/pdf")
				e.hdr("Content-Disposition", "attachment;\r\n filename*0*=utf-8''%E3%83%AC%E3%83%9D%E3%83%BC%E3%83%88;\r\n filename*1*=%20%E7%AC%AC2%E7%89%88;\r\n filename*2=.pdf")
			} else {
				e.hdr("Content-Type", "application/pdf; name*=iso-8859-1'de'%DCbersicht%20M%E4rz.pdf")
				e.hdr("Content-Disposition", "attachment; filename*=iso-8859-1'de'%DCbersicht%20M%E4rz.pdf")
			}
			e.hdr("Content-Transfer-Encoding", "base64")
			e.line("")
			e.b64(3000)
		})
	}},
	{"bad-encoded-words", 3, func(e *edgeCtx) {
		switch e.v {
		case 0:
			e.std("=?utf-8?B?not*valid*base64?= and more")
		case 1:
			e.std("=?utf-8?Q?unterminated_encoded_word")
		case 2:
			e.std("=?x-klingon?Q?tlhIngan_Hol?= unknown charset")
		}
		e.plain(e.body())
	}},
	{"bad-addresses", 3, func(e *edgeCtx) {
		switch e.v {
		case 0:
			e.std("double brackets", "From")
			e.hdr("From", "<<broken@@example..org>>")
		case 1:
			e.std("undisclosed", "To")
			e.hdr("To", "undisclosed-recipients:;")
		case 2:
			e.std("no From, only Sender", "From")
			e.hdr("Sender", "robot@example.net")
		}
		e.plain(e.body())
	}},
	{"header-spacing", 2, func(e *edgeCtx) {
		e.std("", "Subject")
		if e.v == 0 {
			e.line("Subject:no space after the colon")
		} else {
			e.line("Subject : space before the colon")
		}
		e.plain(e.body())
	}},
	{"uuencode-body", 1, func(e *edgeCtx) {
		e.std("uuencoded attachment in the body")
		e.hdr("Content-Type", "text/plain")
		e.line("")
		e.line("see attached")
		e.line("")
		e.line("begin 644 data.bin")
		for i := 0; i < 20; i++ {
			e.line("M" + strings.Repeat("86%L;&\\@=V]R;&0*", 4)[:60])
		}
		e.line("`")
		e.line("end")
	}},
	{"tnef", 1, func(e *edgeCtx) {
		e.withAttachment("Outlook TNEF", "tn", func() {
			e.hdr("Content-Type", `application/ms-tnef; name="winmail.dat"`)
			e.hdr("Content-Disposition", `attachment; filename="winmail.dat"`)
			e.hdr("Content-Transfer-Encoding", "base64")
			e.line("")
			e.b64(8000)
		})
	}},
	{"html-only-broken", 1, func(e *edgeCtx) {
		e.std("HTML only, broken markup")
		e.hdr("Content-Type", "text/html; charset=utf-8")
		e.line("")
		e.line("<html><body><p>unclosed <b>bold <i>italic</p><table><tr><td>cell")
		e.line("<script>alert(1)</script><img src=x onerror=y>")
	}},
	{"base64-line-length", 2, func(e *edgeCtx) {
		e.std("base64 with odd lines")
		e.hdr("Content-Type", "application/octet-stream")
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		s := base64.StdEncoding.EncodeToString(randomBytes(e.r, 6000))
		if e.v == 0 {
			e.line(s)
		} else {
			for i := 0; i+40 <= len(s); i += 40 {
				e.line(s[i:i+20] + " \t" + s[i+20:i+40])
			}
		}
	}},
	{"utf16-body", 1, func(e *edgeCtx) {
		e.std("UTF-16 body")
		e.hdr("Content-Type", "text/plain; charset=utf-16")
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		var b []byte
		b = append(b, 0xff, 0xfe)
		for _, c := range "Hello – Grüße – 你好\r\n" {
			b = append(b, byte(c), byte(c>>8))
		}
		writeBase64(&e.msgWriter, b)
	}},
	{"control-chars", 2, func(e *edgeCtx) {
		if e.v == 0 {
			e.std("control \x01 chars \x7f in subject")
			e.plain(e.body())
		} else {
			e.std("control chars in body")
			e.plain("form\x0cfeed, vertical\x0btab, escape\x1b[31m red\x1b[0m, bell\x07" + crlf)
		}
	}},
	{"header-case", 1, func(e *edgeCtx) {
		e.std("odd header case", "MIME-Version")
		e.hdr("mime-version", "1.0 (produced by a mailer)")
		e.hdr("CONTENT-TYPE", "TEXT/PLAIN; CHARSET=UTF-8")
		e.hdr("content-transfer-encoding", "7BIT")
		e.line("")
		e.WriteString(e.body())
	}},
	{"path-traversal-filename", 1, func(e *edgeCtx) {
		e.withAttachment("dangerous filename", "pt", func() {
			e.hdr("Content-Type", `application/octet-stream; name="..\..\windows\evil.exe"`)
			e.hdr("Content-Disposition", `attachment; filename="../../etc/passwd"`)
			e.hdr("Content-Transfer-Encoding", "base64")
			e.line("")
			e.b64(1000)
		})
	}},
	{"zero-length-attachment", 1, func(e *edgeCtx) {
		e.withAttachment("empty attachment", "z", func() {
			e.hdr("Content-Type", `application/pdf; name="empty.pdf"`)
			e.hdr("Content-Transfer-Encoding", "base64")
			e.line("")
		})
	}},
	{"multipart-without-mime-version", 1, func(e *edgeCtx) {
		e.std("no MIME-Version", "MIME-Version")
		e.hdr("Content-Type", `multipart/alternative; boundary="nm"`)
		e.line("")
		e.line("--nm")
		e.plain(e.body())
		e.line("--nm--")
	}},
	{"content-location", 1, func(e *edgeCtx) {
		e.std("Content-Location and odd Content-ID")
		e.hdr("Content-Type", `multipart/related; boundary="cl"`)
		e.line("")
		e.line("--cl")
		e.hdr("Content-Location", "http://www.example.com/page.html")
		e.hdr("Content-Type", "text/html")
		e.line("")
		e.line(`<img src="image.gif">`)
		e.line("--cl")
		e.hdr("Content-Location", "image.gif")
		e.hdr("Content-ID", "no-angle-brackets")
		e.hdr("Content-Type", "image/gif")
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		e.b64(700)
		e.line("--cl--")
	}},
	{"appledouble", 1, func(e *edgeCtx) {
		e.std("AppleDouble attachment")
		e.hdr("Content-Type", `multipart/mixed; boundary="ad"`)
		e.line("")
		e.line("--ad")
		e.hdr("Content-Type", `multipart/appledouble; boundary="ad2"`)
		e.line("")
		e.line("--ad2")
		e.hdr("Content-Type", "application/applefile")
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		e.b64(200)
		e.line("--ad2")
		e.hdr("Content-Type", `image/jpeg; name="pic.jpg"`)
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		e.b64(3000)
		e.line("--ad2--")
		e.line("--ad--")
	}},
	{"zimbra-headers", 1, func(e *edgeCtx) {
		e.std("Zimbra and spam headers")
		e.hdr("X-Spam-Status", "No, score=-2.9 required=6.6 tests=[ALL_TRUSTED=-1,\r\n\tBAYES_00=-1.9, DKIM_SIGNED=0.1, DKIM_VALID=-0.1] autolearn=ham\r\n\tautolearn_force=no")
		e.hdr("X-Virus-Scanned", "amavisd-new at example.com")
		e.hdr("X-Originating-IP", "[198.51.100.4]")
		e.hdr("Thread-Index", "AdkQx3Kq0x8v2RLSQ0mF3w==")
		e.hdr("Thread-Topic", "Zimbra headers")
		e.plain(e.body())
	}},
	{"iso-2022-jp-body", 1, func(e *edgeCtx) {
		e.std("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=")
		e.hdr("Content-Type", "text/plain; charset=ISO-2022-JP")
		e.hdr("Content-Transfer-Encoding", "7bit")
		e.line("")
		e.line("\x1b$B$3$s$K$A$O!\"@$3&\x1b(B")
	}},
	{"legacy-8bit-charset", 3, func(e *edgeCtx) {
		cs := []string{"gb18030", "big5", "koi8-r"}[e.v]
		e.std("legacy charset " + cs)
		e.hdrf("Content-Type", "text/plain; charset=%s", cs)
		e.hdr("Content-Transfer-Encoding", "8bit")
		e.line("")
		for i := 0; i < 10; i++ {
			b := randomBytes(e.r, 60)
			for j := range b {
				b[j] = 0xa1 + b[j]%0x5d
			}
			e.line(string(b))
		}
	}},
	{"format-flowed", 1, func(e *edgeCtx) {
		e.std("format=flowed")
		e.hdr("Content-Type", "text/plain; charset=utf-8; format=flowed; delsp=yes")
		e.line("")
		e.line("This line is flowed and continues on ")
		e.line("the next line. ")
		e.line("> quoted and flowed ")
		e.line("> still quoted")
		e.line("-- ")
		e.line("signature")
	}},
	{"whitespace-body", 1, func(e *edgeCtx) {
		e.std("whitespace only")
		e.plain("   \r\n\t\r\n \r\n")
	}},
	{"multipart-digest", 1, func(e *edgeCtx) {
		e.std("digest")
		e.hdr("Content-Type", `multipart/digest; boundary="dg"`)
		e.line("")
		for i := 0; i < 3; i++ {
			e.line("--dg")
			e.line("")
			e.hdrf("Subject", "digest item %d", i)
			e.hdr("From", "list@example.org")
			e.line("")
			e.WriteString(e.body())
		}
		e.line("--dg--")
	}},
	{"emoji-subject-raw", 1, func(e *edgeCtx) {
		e.std("🎉🎂🍰 raw emoji subject 👍🏽")
		e.plain(e.body())
	}},
	{"garbage-references", 1, func(e *edgeCtx) {
		e.std("garbage References")
		e.hdr("In-Reply-To", "your message of Tuesday <not an id")
		e.hdr("References", "<a@b> garbage <<c@d>> <e@f")
		e.plain(e.body())
	}},
	{"8bit-x-header", 1, func(e *edgeCtx) {
		e.std("8-bit X-header")
		e.hdr("X-Comment", "naïve café – \xe9t\xe9 mixed encodings")
		e.plain(e.body())
	}},
	{"inline-text-disposition", 1, func(e *edgeCtx) {
		e.std("inline text with a filename")
		e.hdr("Content-Disposition", `inline; filename="notes.txt"`)
		e.plain(e.body())
	}},
	{"binary-transfer-encoding", 1, func(e *edgeCtx) {
		e.std("binary content transfer encoding")
		e.hdr("Content-Type", "application/octet-stream")
		e.hdr("Content-Transfer-Encoding", "binary")
		e.line("")
		b := randomBytes(e.r, 2000)
		for i := range b {
			if b[i] == 0 || b[i] == '\r' || b[i] == '\n' {
				b[i] = 0xff
			}
		}
		e.Write(b)
		e.line("")
	}},
	{"single-part-alternative", 1, func(e *edgeCtx) {
		e.std("alternative with one part")
		e.hdr("Content-Type", `multipart/alternative; boundary="one"`)
		e.line("")
		e.line("--one")
		e.plain(e.body())
		e.line("--one--")
	}},
	{"text-enriched", 1, func(e *edgeCtx) {
		e.std("text/enriched")
		e.hdr("Content-Type", "text/enriched")
		e.line("")
		e.line("<bold>Now</bold> is the time for <italic>all</italic> good men")
	}},
	{"content-type-comment", 1, func(e *edgeCtx) {
		e.std("comments in Content-Type")
		e.hdr("Content-Type", "text/plain (plain text) ; charset=utf-8 (unicode)")
		e.line("")
		e.WriteString(e.body())
	}},
	{"mixed-encoded-words", 1, func(e *edgeCtx) {
		e.std("Re: AW: Fwd: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= =?iso-8859-1?Q?_aus_K=F6ln?= =?utf-8?B?8J+OiQ==?=")
		e.plain(e.body())
	}},
	{"encoded-word-in-quotes", 1, func(e *edgeCtx) {
		e.std("encoded word inside quotes", "From")
		e.hdr("From", `"=?utf-8?Q?M=C3=BCller?=, Hans" <hans@example.de>`)
		e.plain(e.body())
	}},
	{"rtl-subject", 1, func(e *edgeCtx) {
		e.std("=?utf-8?B?16nXnNeV150g16LXldec150=?= (Hebrew, right to left)")
		e.plain("שלום עולם" + crlf)
	}},
	{"smime-enveloped", 1, func(e *edgeCtx) {
		e.std("encrypted S/MIME")
		e.hdr("Content-Type", `application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"`)
		e.hdr("Content-Disposition", `attachment; filename="smime.p7m"`)
		e.hdr("Content-Transfer-Encoding", "base64")
		e.line("")
		e.b64(6000)
	}},
	{"pgp-inline", 1, func(e *edgeCtx) {
		e.std("inline PGP")
		e.hdr("Content-Type", "text/plain; charset=us-ascii")
		e.line("")
		e.line("-----BEGIN PGP MESSAGE-----")
		e.line("")
		e.b64(1500)
		e.line("-----END PGP MESSAGE-----")
	}},
	{"header-998", 1, func(e *edgeCtx) {
		e.std("a header line of exactly 998 octets")
		e.hdr("X-Long", strings.Repeat("y", 998-len("X-Long: ")))
		e.plain(e.body())
	}},
	{"body-line-1001", 1, func(e *edgeCtx) {
		e.std("a body line over the 998 limit")
		e.plain(strings.Repeat("z", 1001) + crlf)
	}},
	{"empty-header-values", 1, func(e *edgeCtx) {
		e.std("", "Subject", "To")
		e.line("Subject:")
		e.line("To: ")
		e.line("Cc:")
		e.plain(e.body())
	}},
	{"vcard-attachment", 1, func(e *edgeCtx) {
		e.withAttachment("contact card attached", "vc", func() {
			e.hdr("Content-Type", `text/vcard; charset=utf-8; name="contact.vcf"`)
			e.line("")
			e.line("BEGIN:VCARD")
			e.line("VERSION:3.0")
			e.line("FN:Jürgen Müller")
			e.line("EMAIL:juergen@example.de")
			e.line("END:VCARD")
		})
	}},
}

// exactSize writes a valid text message of exactly n bytes.
func exactSize(e *edgeCtx, n int) {
	e.std(fmt.Sprintf("exactly %d bytes", n))
	e.hdr("Content-Type", "text/plain; charset=us-ascii")
	e.line("")
	rest := n - e.Len()
	for rest > 74 {
		e.line(strings.Repeat("x", 70))
		rest -= 72
	}
	if rest >= 2 {
		e.line(strings.Repeat("y", rest-2))
	} else {
		e.WriteString(strings.Repeat("z", rest))
	}
}

// edgeCases is the expanded list, one entry per message.
var edgeCases = func() []edgeCase {
	var out []edgeCase
	for _, t := range edgeTemplates {
		for v := 0; v < t.variants; v++ {
			name := t.name
			if t.variants > 1 {
				name = fmt.Sprintf("%s-%d", t.name, v+1)
			}
			out = append(out, edgeCase{name: name, v: v, gen: t.gen})
		}
	}
	return out
}()

var edgeByName = func() map[string]edgeCase {
	m := map[string]edgeCase{}
	for _, e := range edgeCases {
		m[e.name] = e
	}
	return m
}()

// EdgeCaseNames returns the Kind suffixes of the edge-case messages, in order.
func EdgeCaseNames() []string {
	out := make([]string, len(edgeCases))
	for i, e := range edgeCases {
		out[i] = e.name
	}
	return out
}

func renderEdge(name string, r *rand.Rand, p *msgPlan) []byte {
	e := &edgeCtx{r: r, p: p}
	if name == "nul" {
		e.std("a message with a NUL byte")
		e.plain("before\x00after" + crlf)
		return e.Bytes()
	}
	ec, ok := edgeByName[name]
	if !ok {
		e.std("unknown edge case " + name)
		e.plain(crlf)
		return e.Bytes()
	}
	e.v = ec.v
	ec.gen(e)
	return e.Bytes()
}
