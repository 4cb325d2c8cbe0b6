package caldav

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	ical "github.com/arran4/golang-ical"
)

// The fingerprint verification used before the semantic comparison: the
// fuzz tests check that the semantic comparison flags every change this
// one flags as a loss.

// legacyIgnored are the properties the legacy fingerprint skipped.
var legacyIgnored = map[string]bool{"DTSTAMP": true, "LAST-MODIFIED": true, "PRODID": true}

// legacyHash is the legacy fingerprint of data; ok is false when
// golang-ical does not parse it.
func legacyHash(data []byte) (string, bool) {
	cal, err := ical.ParseCalendar(bytes.NewReader(data))
	if err != nil {
		return "", false
	}
	_, h := fingerprint(cal)
	return h, true
}

func fingerprint(cal *ical.Calendar) (string, string) {
	var parts []string
	uid := ""
	for _, c := range cal.Components {
		name := compName(c)
		if name == "VTIMEZONE" {
			continue
		}
		if uid == "" {
			for _, p := range c.UnknownPropertiesIANAProperties() {
				if strings.EqualFold(p.IANAToken, "UID") {
					uid = strings.TrimSpace(p.Value)
				}
			}
		}
		parts = append(parts, canon(c))
	}
	sort.Strings(parts)
	h := sha256.Sum256([]byte(strings.Join(parts, "\x1e")))
	return uid, hex.EncodeToString(h[:])
}

func canon(c ical.Component) string {
	var lines []string
	for _, p := range c.UnknownPropertiesIANAProperties() {
		name := strings.ToUpper(p.IANAToken)
		if legacyIgnored[name] {
			continue
		}
		var ps []string
		for k, vs := range p.ICalParameters {
			vv := append([]string(nil), vs...)
			for i := range vv {
				vv[i] = strings.Trim(vv[i], `"`)
			}
			sort.Strings(vv)
			ps = append(ps, strings.ToUpper(k)+"="+strings.Join(vv, ","))
		}
		sort.Strings(ps)
		lines = append(lines, name+";"+strings.Join(ps, ";")+":"+p.Value)
	}
	for _, s := range c.SubComponents() {
		lines = append(lines, canon(s))
	}
	sort.Strings(lines)
	return "BEGIN:" + compName(c) + "\x1f" + strings.Join(lines, "\x1f") + "\x1fEND"
}
