package carddav_test

import (
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/davtest"
)

func TestConformanceMemory(t *testing.T) {
	src, _ := davtest.MemSide(t, "mem-src")
	dst, _ := davtest.MemSide(t, "mem-dst")
	davtest.RunContacts(t, src, dst, davtest.Options{Contacts: 40})
}
