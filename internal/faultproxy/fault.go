package faultproxy

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Direction names one half of a proxied connection.
type Direction uint8

const (
	// ToServer is the client-to-server half (commands, APPEND literals, PUT bodies).
	ToServer Direction = iota
	// ToClient is the server-to-client half (greetings, FETCH responses).
	ToClient
)

// String returns "to-server" or "to-client".
func (d Direction) String() string {
	if d == ToClient {
		return "to-client"
	}
	return "to-server"
}

// Kind is what a Fault does.
type Kind uint8

const (
	// Reset aborts both sides of the connection with a TCP RST.
	Reset Kind = iota + 1
	// Stall stops forwarding in the fault's direction for Fault.Duration
	// (0 means until the connection is closed by someone else).
	Stall
	// Inject writes Fault.Data to the receiver of the fault's direction
	// without counting it as forwarded bytes.
	Inject
	// Close closes both sides of the connection gracefully (FIN).
	Close
)

// String returns the kind's name, e.g. "reset".
func (k Kind) String() string {
	switch k {
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	case Inject:
		return "inject"
	case Close:
		return "close"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Fault is one fault on one connection. It fires when Offset bytes have been
// forwarded in direction Dir on that connection, that is before the byte at
// index Offset is forwarded. A fault whose offset the connection never reaches
// never fires and is not counted.
type Fault struct {
	Kind   Kind
	Dir    Direction
	Offset int64
	// Duration is how long a Stall lasts; 0 means until the connection ends.
	Duration time.Duration
	// Data is what an Inject writes.
	Data []byte
}

// String describes the fault, e.g. "reset to-server@4096".
func (f Fault) String() string {
	return fmt.Sprintf("%s %s@%d", f.Kind, f.Dir, f.Offset)
}

// Schedule decides the faults of each connection. Faults is called once per
// accepted connection with its 0-based index in accept order; it may be called
// concurrently.
type Schedule interface {
	Faults(conn int) []Fault
}

// ScheduleFunc adapts a function to Schedule.
type ScheduleFunc func(conn int) []Fault

// Faults calls f.
func (f ScheduleFunc) Faults(conn int) []Fault { return f(conn) }

// Fixed gives the listed connections (by index) their faults; the others get none.
type Fixed map[int][]Fault

// Faults returns the faults listed for conn.
func (m Fixed) Faults(conn int) []Fault { return m[conn] }

// Random is a reproducible schedule: connection n draws its faults from a PCG
// seeded with (Seed, n), so the same seed gives the n-th connection the same
// faults in every run, whatever the timing.
type Random struct {
	// Seed selects the sequence.
	Seed uint64
	// Rate is the probability (0..1) that a connection gets a fault.
	Rate float64
	// Kinds are drawn uniformly; empty means Reset only.
	Kinds []Kind
	// Dirs are drawn uniformly; empty means both directions.
	Dirs []Direction
	// MinOffset and MaxOffset bound the offset, drawn uniformly in
	// [MinOffset, MaxOffset); MaxOffset 0 means MinOffset+64KiB.
	MinOffset, MaxOffset int64
	// StallFor is the Duration of drawn stalls.
	StallFor time.Duration
	// InjectData is the Data of drawn injects; empty means "* BYE service busy\r\n".
	InjectData []byte
	// SkipFirst leaves connections with an index below it alone (e.g. to let
	// a setup phase through).
	SkipFirst int
}

// Faults returns at most one fault for connection conn.
func (r Random) Faults(conn int) []Fault {
	if conn < r.SkipFirst || r.Rate <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(r.Seed, uint64(conn)))
	if rng.Float64() >= r.Rate {
		return nil
	}
	kinds := r.Kinds
	if len(kinds) == 0 {
		kinds = []Kind{Reset}
	}
	dirs := r.Dirs
	if len(dirs) == 0 {
		dirs = []Direction{ToServer, ToClient}
	}
	lo, hi := r.MinOffset, r.MaxOffset
	if hi <= lo {
		hi = lo + 64<<10
	}
	f := Fault{
		Kind:   kinds[rng.IntN(len(kinds))],
		Dir:    dirs[rng.IntN(len(dirs))],
		Offset: lo + rng.Int64N(hi-lo),
	}
	switch f.Kind {
	case Stall:
		f.Duration = r.StallFor
	case Inject:
		f.Data = r.InjectData
		if len(f.Data) == 0 {
			f.Data = []byte("* BYE service busy\r\n")
		}
	}
	return []Fault{f}
}

// split returns the faults of one direction, sorted by offset (stable, so
// faults at the same offset fire in the order given).
func split(fs []Fault, d Direction) []Fault {
	var out []Fault
	for _, f := range fs {
		if f.Dir == d {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}
