package dav

import (
	"reflect"
	"sync"
)

// sourceMemo remembers, for each source object a Copy read, its ETag and
// the UID and fingerprint of every item it split into, so that a Verify
// right after the copy does not read and parse the source again: an object
// whose ETag is unchanged has the same content. It also remembers the UIDs
// the copy adopted at a destination href outside the collection's own
// destination (see Verify). It belongs to one source. It is safe for
// concurrent use.
type sourceMemo struct {
	mu  sync.Mutex
	src Source
	m   map[string]memoEntry // collection href + "\x00" + object href
	// adopted maps a source collection href to UID -> destination href.
	adopted map[string]map[string]string
}

type memoEntry struct {
	etag  string
	items [][2]string // UID, hash
}

// newSourceMemo returns an empty memo for objects read from src.
func newSourceMemo(src Source) *sourceMemo {
	return &sourceMemo{src: src, m: map[string]memoEntry{}}
}

// forSource reports whether the memo holds objects of src (the same value).
func (s *sourceMemo) forSource(src Source) bool {
	if s == nil || s.src == nil || src == nil {
		return false
	}
	if reflect.TypeOf(src) != reflect.TypeOf(s.src) || !reflect.TypeOf(src).Comparable() {
		return false
	}
	return s.src == src
}

func (s *sourceMemo) put(coll string, ref Ref, items []Item) {
	if s == nil || ref.ETag == "" {
		return
	}
	e := memoEntry{etag: ref.ETag, items: make([][2]string, len(items))}
	for i, it := range items {
		e.items[i] = [2]string{it.UID, it.Hash}
	}
	s.mu.Lock()
	s.m[coll+"\x00"+ref.Href] = e
	s.mu.Unlock()
}

// get returns the items of the object at ref when its ETag is the one
// read by the copy.
func (s *sourceMemo) get(coll string, ref Ref) ([][2]string, bool) {
	if s == nil || ref.ETag == "" {
		return nil, false
	}
	s.mu.Lock()
	e, ok := s.m[coll+"\x00"+ref.Href]
	s.mu.Unlock()
	if !ok || e.etag != ref.ETag {
		return nil, false
	}
	return e.items, true
}

// adopt notes that the copy of source collection coll matched uid with the
// destination object at href, outside the collection's destination.
func (s *sourceMemo) adopt(coll, uid, href string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adopted == nil {
		s.adopted = map[string]map[string]string{}
	}
	if s.adopted[coll] == nil {
		s.adopted[coll] = map[string]string{}
	}
	s.adopted[coll][uid] = href
}

// adoptedIn returns a copy of the adoptions noted for source collection
// coll (UID -> destination href).
func (s *sourceMemo) adoptedIn(coll string) map[string]string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.adopted[coll]))
	for u, h := range s.adopted[coll] {
		out[u] = h
	}
	return out
}
