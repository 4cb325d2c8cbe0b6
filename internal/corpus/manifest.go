package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// ManifestVersion is the version written into manifests.
const ManifestVersion = 1

// Manifest describes a corpus without its bytes: what a server must hold
// after seeding or copying. It is what WriteManifest writes as JSON.
type Manifest struct {
	Version      int                  `json:"version"`
	User         string               `json:"user"`
	Folders      []Folder             `json:"folders"`
	Messages     []ManifestMessage    `json:"messages"`
	Calendars    []ManifestCollection `json:"calendars"`
	AddressBooks []ManifestCollection `json:"address_books"`
}

// ManifestMessage is one message of a Manifest.
type ManifestMessage struct {
	Folder       string    `json:"folder"`
	SHA256       string    `json:"sha256"`
	Size         int       `json:"size"`
	Flags        []string  `json:"flags"`
	InternalDate time.Time `json:"internaldate"`
	// MessageID is the Message-ID header without angle brackets, "" when
	// the message has none.
	MessageID string `json:"message_id,omitempty"`
	Kind      string `json:"kind,omitempty"`
}

// ManifestCollection is one calendar or address book of a Manifest.
type ManifestCollection struct {
	Name        string           `json:"name"`
	DisplayName string           `json:"display_name,omitempty"`
	Components  []string         `json:"components,omitempty"`
	Objects     []ManifestObject `json:"objects"`
}

// ManifestObject is one calendar object or vCard of a Manifest.
type ManifestObject struct {
	UID    string `json:"uid"`
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
	Broken bool   `json:"broken,omitempty"`
}

// NewManifest describes a.
func NewManifest(a *Account) *Manifest {
	m := &Manifest{Version: ManifestVersion, User: a.User, Folders: a.Mail.Folders}
	for _, msg := range a.Mail.Messages {
		m.AddMessage(msg)
	}
	m.Calendars = manifestCollections(a.Calendars)
	m.AddressBooks = manifestCollections(a.AddressBooks)
	return m
}

// AddMessage appends msg to the manifest, so that a manifest can be built
// while streaming messages with EachMessage.
func (m *Manifest) AddMessage(msg Message) {
	m.Messages = append(m.Messages, ManifestMessage{
		Folder:       msg.Folder,
		SHA256:       sha256Hex(msg.Raw),
		Size:         len(msg.Raw),
		Flags:        msg.Flags,
		InternalDate: msg.InternalDate,
		MessageID:    MessageID(msg.Raw),
		Kind:         msg.Kind,
	})
}

func manifestCollections(cs []Collection) []ManifestCollection {
	out := make([]ManifestCollection, 0, len(cs))
	for _, c := range cs {
		mc := ManifestCollection{Name: c.Name, DisplayName: c.DisplayName, Components: c.Components, Objects: []ManifestObject{}}
		for _, o := range c.Objects {
			mc.Objects = append(mc.Objects, ManifestObject{UID: o.UID, Name: o.Name, SHA256: sha256Hex(o.Data), Size: len(o.Data), Broken: o.Broken})
		}
		out = append(out, mc)
	}
	return out
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// WriteManifest writes the manifest of a as indented JSON.
func WriteManifest(w io.Writer, a *Account) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(NewManifest(a)); err != nil {
		return fmt.Errorf("corpus: write manifest: %w", err)
	}
	return nil
}

// ReadManifest reads a manifest written by WriteManifest.
func ReadManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("corpus: read manifest: %w", err)
	}
	if m.Version != ManifestVersion {
		return nil, fmt.Errorf("corpus: read manifest: version %d, want %d", m.Version, ManifestVersion)
	}
	return &m, nil
}

// MessageID returns the Message-ID of a raw message without angle brackets,
// or "" when its header has none. It unfolds the header and stops at the
// first empty line.
func MessageID(raw []byte) string {
	hdr := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		hdr = raw[:i+2]
	} else if bytes.HasPrefix(raw, []byte("\r\n")) {
		return ""
	}
	lines := strings.Split(string(hdr), "\r\n")
	for i, l := range lines {
		name, val, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Message-ID") {
			continue
		}
		for _, c := range lines[i+1:] {
			if c == "" || (c[0] != ' ' && c[0] != '\t') {
				break
			}
			val += c
		}
		val = strings.TrimSpace(val)
		val = strings.TrimSuffix(strings.TrimPrefix(val, "<"), ">")
		return val
	}
	return ""
}

// Summary is the shape of a corpus in numbers, for benchmarks and the demo.
type Summary struct {
	Messages    int
	Bytes       int64
	P50, P90    int
	P99, Max    int
	NoMessageID int
	Duplicates  int // copies beyond the first of identical bytes in one folder or across folders
	EdgeCases   int
	// Kinds counts messages per Message.Kind without the "+dup" suffix;
	// all edge cases count as "edge".
	Kinds        map[string]int
	Folders      []FolderSummary
	Calendars    int
	CalObjects   int
	AddressBooks int
	Cards        int
	Broken       int // DAV objects marked Broken
}

// FolderSummary is one folder's line of a Summary.
type FolderSummary struct {
	Name     string
	Messages int
	Bytes    int64
}

// Summary computes the numbers of the manifest.
func (m *Manifest) Summary() Summary {
	s := Summary{Messages: len(m.Messages), Kinds: map[string]int{}}
	per := map[string]*FolderSummary{}
	for _, f := range m.Folders {
		s.Folders = append(s.Folders, FolderSummary{Name: f.Name})
	}
	for i := range s.Folders {
		per[s.Folders[i].Name] = &s.Folders[i]
	}
	sizes := make([]int, 0, len(m.Messages))
	seen := map[string]bool{}
	for _, msg := range m.Messages {
		s.Bytes += int64(msg.Size)
		sizes = append(sizes, msg.Size)
		if msg.MessageID == "" {
			s.NoMessageID++
		}
		if seen[msg.SHA256] {
			s.Duplicates++
		}
		seen[msg.SHA256] = true
		kind := strings.TrimSuffix(msg.Kind, "+dup")
		if strings.HasPrefix(kind, "edge/") {
			s.EdgeCases++
			kind = "edge"
		}
		s.Kinds[kind]++
		fs := per[msg.Folder]
		if fs == nil {
			s.Folders = append(s.Folders, FolderSummary{Name: msg.Folder})
			per = map[string]*FolderSummary{}
			for i := range s.Folders {
				per[s.Folders[i].Name] = &s.Folders[i]
			}
			fs = per[msg.Folder]
		}
		fs.Messages++
		fs.Bytes += int64(msg.Size)
	}
	sort.Ints(sizes)
	if n := len(sizes); n > 0 {
		q := func(p float64) int { return sizes[int(p*float64(n-1)+0.5)] }
		s.P50, s.P90, s.P99, s.Max = q(0.50), q(0.90), q(0.99), sizes[n-1]
	}
	s.Calendars = len(m.Calendars)
	s.AddressBooks = len(m.AddressBooks)
	for _, c := range m.Calendars {
		s.CalObjects += len(c.Objects)
		for _, o := range c.Objects {
			if o.Broken {
				s.Broken++
			}
		}
	}
	for _, c := range m.AddressBooks {
		s.Cards += len(c.Objects)
		for _, o := range c.Objects {
			if o.Broken {
				s.Broken++
			}
		}
	}
	return s
}

// Summarize is NewManifest(a).Summary().
func Summarize(a *Account) Summary { return NewManifest(a).Summary() }

// WriteText prints the summary as a small table.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "messages\t%d\t\n", s.Messages)
	fmt.Fprintf(tw, "bytes\t%d\t\n", s.Bytes)
	fmt.Fprintf(tw, "size p50/p90/p99/max\t%d / %d / %d / %d\t\n", s.P50, s.P90, s.P99, s.Max)
	fmt.Fprintf(tw, "without Message-ID\t%d\t\n", s.NoMessageID)
	fmt.Fprintf(tw, "duplicate copies\t%d\t\n", s.Duplicates)
	fmt.Fprintf(tw, "edge cases\t%d\t\n", s.EdgeCases)
	kinds := make([]string, 0, len(s.Kinds))
	for k := range s.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(tw, "  kind %s\t%d\t\n", k, s.Kinds[k])
	}
	for _, f := range s.Folders {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t\n", f.Name, f.Messages, f.Bytes)
	}
	fmt.Fprintf(tw, "calendars / objects\t%d / %d\t\n", s.Calendars, s.CalObjects)
	fmt.Fprintf(tw, "address books / cards\t%d / %d\t\n", s.AddressBooks, s.Cards)
	fmt.Fprintf(tw, "broken DAV objects\t%d\t\n", s.Broken)
	return tw.Flush()
}
