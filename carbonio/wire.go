package carbonio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file holds the tolerant decoders for Zimbra's JSON SOAP dialect: an
// attribute equals a same-named child, so "x" and {"_content":"x"} mean the
// same, and a repeated child may come as an object or as an array.

// text is a string that decodes from "x", {"_content":"x"}, a number, a
// boolean, null, or a one-element array of any of those.
type text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty value")
	}
	switch b[0] {
	case 'n':
		*t = ""
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	case 't', 'f':
		var v bool
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*t = text(strconv.FormatBool(v))
		return nil
	case '{':
		var o struct {
			Content *text `json:"_content"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		if o.Content != nil {
			*t = *o.Content
		} else {
			*t = ""
		}
		return nil
	case '[':
		var a []json.RawMessage
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		if len(a) == 0 {
			*t = ""
			return nil
		}
		if bytes.HasPrefix(bytes.TrimSpace(a[0]), []byte("[")) {
			return errors.New("nested array where a value was expected")
		}
		return t.UnmarshalJSON(a[0])
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a value, got %.20q", b)
		}
		*t = text(n.String())
		return nil
	}
}

func (t text) String() string { return string(t) }

// int64 returns the value as an integer, 0 when empty or not a number.
func (t text) int64() int64 {
	s := strings.TrimSpace(string(t))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f)
	}
	return 0
}

// float returns the value as a float, 0 when empty or not a number.
func (t text) float() float64 {
	f, _ := strconv.ParseFloat(strings.TrimSpace(string(t)), 64)
	return f
}

// bool reports whether the value is true, TRUE, 1 or yes.
func (t text) bool() bool {
	switch strings.ToLower(strings.TrimSpace(string(t))) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// list is a repeated child that decodes from an object or an array.
type list[T any] []T

// UnmarshalJSON implements json.Unmarshaler.
func (l *list[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty value")
	}
	switch b[0] {
	case 'n':
		*l = nil
		return nil
	case '[':
		var a []T
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		*l = a
		return nil
	default:
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*l = list[T]{v}
		return nil
	}
}

// attr is one entry of an "a" attribute list.
type attr struct {
	N       text `json:"n"`
	Content text `json:"_content"`
}

// attrs is an "a" list; attributes may repeat (multi-valued).
type attrs list[attr]

// UnmarshalJSON implements json.Unmarshaler.
func (a *attrs) UnmarshalJSON(b []byte) error { return (*list[attr])(a).UnmarshalJSON(b) }

// Map returns the attributes by name, keeping every value.
func (a attrs) Map() map[string][]string {
	if len(a) == 0 {
		return nil
	}
	m := make(map[string][]string, len(a))
	for _, e := range a {
		m[string(e.N)] = append(m[string(e.N)], string(e.Content))
	}
	return m
}

// fault is Body.Fault of a SOAP answer.
type fault struct {
	Reason struct {
		Text text `json:"Text"`
	} `json:"Reason"`
	Detail struct {
		Error list[struct {
			Code text `json:"Code"`
		}] `json:"Error"`
	} `json:"Detail"`
}

// decodeEnvelope parses a SOAP JSON answer for request. It returns the
// content of Body.<want>, or a *Fault, or an error wrapping
// ErrUnexpectedAnswer that names the request.
func decodeEnvelope(request, want string, b []byte) (json.RawMessage, error) {
	var env struct {
		Body map[string]json.RawMessage `json:"Body"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, shapeErr(request, "not a JSON SOAP envelope: %v", err)
	}
	if env.Body == nil {
		return nil, shapeErr(request, "no Body")
	}
	if raw, ok := env.Body["Fault"]; ok {
		var f fault
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, shapeErr(request, "undecodable Fault: %v", err)
		}
		ft := &Fault{Reason: string(f.Reason.Text), Request: request}
		if len(f.Detail.Error) > 0 {
			ft.Code = string(f.Detail.Error[0].Code)
		}
		return nil, ft
	}
	raw, ok := env.Body[want]
	if !ok {
		keys := make([]string, 0, len(env.Body))
		for k := range env.Body {
			keys = append(keys, k)
		}
		return nil, shapeErr(request, "Body has %s, want %s", strings.Join(keys, ","), want)
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return nil, shapeErr(request, "%s is not an object", want)
	}
	return raw, nil
}

// unmarshalAnswer decodes raw (an object, or a one-element array of objects)
// into out.
func unmarshalAnswer(request string, raw json.RawMessage, out any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var a []json.RawMessage
		if err := json.Unmarshal(raw, &a); err != nil || len(a) != 1 {
			return shapeErr(request, "want one answer element, got %d", len(a))
		}
		raw = a[0]
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return shapeErr(request, "%v", err)
	}
	return nil
}

func shapeErr(request, format string, args ...any) error {
	return fmt.Errorf("carbonio: %s: %w: %s", request, ErrUnexpectedAnswer, fmt.Sprintf(format, args...))
}
