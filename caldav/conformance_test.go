package caldav_test

import (
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/dav/davtest"
)

func TestConformanceMemory(t *testing.T) {
	src, _ := davtest.MemSide(t, "mem-src")
	dst, _ := davtest.MemSide(t, "mem-dst")
	davtest.RunCalendars(t, src, dst, davtest.Options{Events: 40, Malformed: true})
}
