package corpus

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// ReferenceMessages is the size of the reference mailbox:
// 9,898 generated messages, 101 cross-folder duplicates, 20 same-folder
// duplicate copies and 102 edge cases.
const ReferenceMessages = 10121

// Default sizes of the calendar and contact parts.
const (
	DefaultEvents   = 60
	DefaultContacts = 50
)

// Options controls Generate. The zero value gives the reference corpus with
// seed 0.
type Options struct {
	// Seed selects the corpus; the same seed and options always give the
	// same bytes.
	Seed int64
	// Messages is the number of messages. 0 means ReferenceMessages; a
	// negative value means no mail at all (no folders either). Values below
	// MinMessages are raised to it, so that every folder kind, duplicate kind
	// and edge case is present in even the smallest corpus.
	Messages int
	// Events is the number of calendar objects across the calendars and the
	// task list. 0 means DefaultEvents; negative means none. The fixed
	// special objects (recurrences, overrides, time zones, tasks…) come first
	// and are always present when Events >= 0.
	Events int
	// Contacts is the number of vCards and groups across the address books.
	// 0 means DefaultContacts; negative means none.
	Contacts int
	// Huge adds one message of at least 50 MB to INBOX (on top of Messages).
	Huge bool
	// NUL adds one EdgeCases message containing a NUL byte (on top of
	// Messages). Servers and go-imap cannot APPEND it: it exists for
	// skip-and-report tests.
	NUL bool
	// Broken adds malformed calendar objects and vCards, marked
	// Object.Broken, for bad-input tests.
	Broken bool
	// BigFolder, when positive, adds the folder BigFolderName holding that
	// many small text messages (on top of Messages), for tests of large
	// folders and UID sets.
	BigFolder int
}

// BigFolderName is the folder Options.BigFolder fills.
const BigFolderName = "Big"

// folderSpec is one folder of the reference tree with its reference count.
type folderSpec struct {
	Folder
	n      int     // messages in the reference corpus, duplicates included
	seen   float64 // probability of \Seen
	year   int     // Archive/YYYY: the year all dates fall in
	list   string  // List-Id of mailing-list folders
	kinds  [3]int  // weights text, alternative, mixed
	filler bool    // receives generated messages
}

const (
	edgeFolder   = "EdgeCases"
	spacesFolder = "Folder with spaces"
)

// referenceFolders is the reference mailbox's folder table, in creation order.
func referenceFolders() []folderSpec {
	std := [3]int{54, 34, 12}
	f := func(name string, n int, seen float64) folderSpec {
		return folderSpec{Folder: Folder{Name: name, Subscribed: true}, n: n, seen: seen, kinds: std, filler: n > 0}
	}
	special := func(fs folderSpec, use string) folderSpec { fs.SpecialUse = use; return fs }
	year := func(y, n int) folderSpec {
		fs := f(fmt.Sprintf("Archive/%d", y), n, 1)
		fs.year = y
		return fs
	}
	list := func(name string, n int, id string) folderSpec {
		fs := f(name, n, 0.72)
		fs.list = id
		fs.kinds = [3]int{85, 12, 3}
		return fs
	}
	sent := special(f("Sent", 1403, 1), `\Sent`)
	drafts := special(f("Drafts", 25, 0), `\Drafts`)
	drafts.kinds = [3]int{80, 15, 5}
	junk := special(f("Junk", 250, 0.3), `\Junk`)
	junk.kinds = [3]int{20, 75, 5}
	news := f("Newsletters", 301, 0.6)
	news.list = "<news.shop.example.net>"
	news.kinds = [3]int{5, 95, 0}
	clients := f("Work/Clients", 230, 0.72)
	clients.kinds = [3]int{40, 30, 30}
	old := f("Old Stuff", 30, 1)
	old.Subscribed = false
	edge := f(edgeFolder, 102, 0.8)
	edge.filler = false
	return []folderSpec{
		f("INBOX", 2605, 0.65),
		sent,
		drafts,
		special(f("Trash", 301, 1), `\Trash`),
		junk,
		special(f("Archive", 172, 1), `\Archive`),
		year(2019, 351), year(2020, 420), year(2021, 480), year(2022, 553), year(2023, 601),
		f("Work", 418, 0.72),
		f("Work/Projects", 150, 0.72),
		f("Work/Projects/Alpha", 140, 0.72),
		f("Work/Projects/Beta v1.2", 90, 0.72),
		clients,
		f("Personal", 242, 0.7),
		f("Personal/Family", 110, 0.7),
		f("Reçus & Factures", 160, 0.75),
		f("Ελληνικά", 45, 0.7),
		f("日本語 メール", 40, 0.7),
		{Folder: Folder{Name: "Lists", NoSelect: true}},
		list("Lists/golang-nuts", 451, "golang-nuts <golang-nuts.googlegroups.com>"),
		list("Lists/debian-devel", 381, "<debian-devel.lists.debian.org>"),
		news,
		f(spacesFolder, 70, 0.7),
		old,
		edge,
		{Folder: Folder{Name: "Empty", Subscribed: true}},
	}
}

// Folders returns the 29 folders of the corpus tree in creation order
// (parents before children).
func Folders() []Folder {
	specs := referenceFolders()
	out := make([]Folder, len(specs))
	for i, s := range specs {
		out[i] = s.Folder
	}
	return out
}

// crossDupTargets are the folders that receive re-filed exact copies of INBOX
// and Sent messages, round robin.
var crossDupTargets = []string{"Archive", "Work", "Work/Projects", "Work/Clients", "Personal", "Personal/Family"}

// Keywords lists the IMAP keywords the corpus uses, including the Zimbra tag
// keyword that Carbonio refuses on APPEND.
var Keywords = []string{"$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "$label1", "$label2", "Work", "Important", "ToDo", ZimbraTagKeyword}

// ZimbraTagKeyword is a Zimbra tag in the NAME:FLAGnnn form that Carbonio
// answers with "NO APPEND failed" (imapsync/imapsync FAQ.d/FAQ.Zimbra.txt).
const ZimbraTagKeyword = "Project:FLAG211"

// DeletedInInbox is the number of INBOX messages flagged \Deleted but not
// expunged.
const DeletedInInbox = 8

// MinMessages is the smallest mailbox Generate makes: the edge cases, a few
// duplicates and a handful of messages per folder.
var MinMessages = func() int {
	l := newLayout(1)
	return l.total
}()

// msgPlan is everything about one message that is decided before its bytes
// are rendered. Rendering depends only on the seed and the plan, never on
// the folder, so a duplicate (same plan, other folder) has the same bytes.
type msgPlan struct {
	folder   string
	kind     string // text, alternative, mixed, forward, huge, edge/<name>
	idx      uint64 // seeds the render
	date     time.Time
	internal time.Time
	badDate  bool
	flags    []string
	msgID    string // without <>; "" means no Message-ID header
	parentID string
	refs     []string
	subject  string
	lang     int
	list     string
	dup      bool
	out      bool // written by the user (Sent, Drafts)
	draft    bool // never sent: no Received chain
	inner    bool // a forwarded message inside another
	small    bool // a short body (BigFolder)
}

// layout is the per-folder message count for a requested total.
type layout struct {
	total      int
	fill       map[string]int // generated messages per filler folder
	cross      int            // cross-folder duplicates
	sameSrc    int            // messages copied twice more within spacesFolder
	edgeCount  int
	folderList []folderSpec
}

// newLayout scales the reference counts to n messages (0 = reference).
func newLayout(n int) layout {
	specs := referenceFolders()
	l := layout{fill: map[string]int{}, folderList: specs, edgeCount: len(edgeCases)}
	refCross := 101
	refSame := 10
	// Reference fill per folder = count - duplicates placed there.
	refFill := map[string]int{}
	refTotalFill := 0
	for _, s := range specs {
		if !s.filler {
			continue
		}
		refFill[s.Name] = s.n
	}
	for i := 0; i < refCross; i++ {
		refFill[crossDupTargets[i%len(crossDupTargets)]]--
	}
	refFill[spacesFolder] -= 2 * refSame
	for _, v := range refFill {
		refTotalFill += v
	}
	if n == 0 {
		n = ReferenceMessages
	}
	scale := float64(n) / ReferenceMessages
	l.cross = max(2*len(crossDupTargets), int(float64(refCross)*scale+0.5))
	l.sameSrc = max(1, int(float64(refSame)*scale+0.5))
	if n == ReferenceMessages {
		l.cross, l.sameSrc = refCross, refSame
	}
	minFill := func(name string) int {
		switch name {
		case "INBOX":
			return DeletedInInbox + len(Keywords) + 4
		case "Sent":
			return 4 // sources of duplicates
		}
		return 2
	}
	gen := n - l.edgeCount - l.cross - 2*l.sameSrc
	// Proportional share with a floor; fix the sum on the largest folders.
	names := make([]string, 0, len(refFill))
	for _, s := range specs {
		if s.filler {
			names = append(names, s.Name)
		}
	}
	sum := 0
	for _, name := range names {
		q := refFill[name] * gen / refTotalFill
		if gen == refTotalFill {
			q = refFill[name]
		}
		q = max(q, minFill(name))
		l.fill[name] = q
		sum += q
	}
	byRef := append([]string(nil), names...)
	sort.SliceStable(byRef, func(i, j int) bool { return refFill[byRef[i]] > refFill[byRef[j]] })
	for i := 0; sum != gen && i < 100000; i++ {
		name := byRef[i%len(byRef)]
		if sum < gen {
			l.fill[name]++
			sum++
		} else if l.fill[name] > minFill(name) {
			l.fill[name]--
			sum--
		} else if i > 10*len(byRef) {
			break // cannot shrink further: the minimum corpus
		}
	}
	l.total = sum + l.edgeCount + l.cross + 2*l.sameSrc
	return l
}

// rng returns the generator for one stream of the corpus.
func rng(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream*0x9E3779B97F4A7C15+0x632BE59BD9B4E019))
}

// Streams of random numbers; message renders use streamRender+index.
const (
	streamPlan   = 1
	streamDAV    = 2
	streamRender = 1 << 32
)

var (
	corpusStart = time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)
	corpusEnd   = time.Date(2025, 10, 31, 23, 0, 0, 0, time.UTC)
)

// zoneOffsets are the Date header zones, −08:00 … +09:00, in minutes.
var zoneOffsets = []int{-8 * 60, -7 * 60, -5 * 60, -4 * 60, 0, 60, 2 * 60, 3 * 60, 5*60 + 30, 8 * 60, 9 * 60}

// plan decides every message of the mailbox.
func plan(o Options) []msgPlan {
	if o.Messages < 0 {
		return nil
	}
	l := newLayout(o.Messages)
	r := rng(o.Seed, streamPlan)
	var plans []msgPlan
	byFolder := map[string][]int{}
	next := uint64(0)
	add := func(p msgPlan) {
		p.idx = next
		next++
		byFolder[p.folder] = append(byFolder[p.folder], len(plans))
		plans = append(plans, p)
	}
	randDate := func(year int) time.Time {
		lo, hi := corpusStart, corpusEnd
		if year != 0 {
			lo = time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
			hi = time.Date(year, 12, 31, 20, 0, 0, 0, time.UTC) // +3h stays in the year
		}
		sec := lo.Unix() + r.Int64N(hi.Unix()-lo.Unix())
		off := zoneOffsets[r.IntN(len(zoneOffsets))]
		return time.Unix(sec, 0).In(time.FixedZone("", off*60))
	}
	msgID := func(host string) string {
		return fmt.Sprintf("%016x.%d.%x@%s", r.Uint64(), next, o.Seed, host)
	}
	hosts := []string{"mail.example.com", "mx.example.org", "smtp.example.net", "lists.example.org", "example.com"}

	// Edge cases first, so that the smallest corpus has all of them.
	for _, e := range edgeCases {
		d := randDate(0)
		p := msgPlan{folder: edgeFolder, kind: "edge/" + e.name, date: d, internal: d.Add(time.Duration(r.IntN(3*3600)) * time.Second)}
		p.msgID = msgID(hosts[r.IntN(len(hosts))])
		if r.Float64() < 0.8 {
			p.flags = []string{`\Seen`}
		}
		add(p)
	}
	if o.NUL {
		d := randDate(0)
		add(msgPlan{folder: edgeFolder, kind: "edge/nul", date: d, internal: d.Add(time.Hour), msgID: msgID("example.com")})
	}

	// Generated messages, folder by folder.
	for _, fs := range l.folderList {
		n := l.fill[fs.Name]
		for i := 0; i < n; i++ {
			d := randDate(fs.year)
			p := msgPlan{folder: fs.Name, date: d, list: fs.list, lang: pickLang(r, fs.Name),
				out: fs.Name == "Sent" || fs.Name == "Drafts", draft: fs.Name == "Drafts"}
			p.internal = d.Add(time.Duration(r.IntN(3*3600+1)) * time.Second)
			switch k := r.IntN(fs.kinds[0] + fs.kinds[1] + fs.kinds[2]); {
			case k < fs.kinds[0]:
				p.kind = "text"
			case k < fs.kinds[0]+fs.kinds[1]:
				p.kind = "alternative"
			case r.IntN(6) == 0:
				p.kind = "forward"
			default:
				p.kind = "mixed"
			}
			// ~0.5 % without Message-ID (never in Sent: our own client sets
			// it), ~0.3 % with an unparseable Date; the first Personal and
			// the first Work message always, so small corpora have them.
			if fs.Name == "Sent" || (r.Float64() >= 0.006 && !(i == 0 && fs.Name == "Personal")) {
				p.msgID = msgID(hosts[r.IntN(len(hosts))])
			}
			p.badDate = r.Float64() < 0.003 || (i == 0 && fs.Name == "Work")
			p.subject = subjectFor(r, p.lang)
			// Threads: reply to an earlier message of the same folder.
			if prev := byFolder[fs.Name]; len(prev) > 0 && r.Float64() < 0.3 {
				parent := &plans[prev[len(prev)-1-r.IntN(min(len(prev), 40))]]
				if parent.msgID != "" && !strings.HasPrefix(parent.kind, "edge/") {
					p.parentID = parent.msgID
					p.refs = append(append([]string(nil), parent.refs...), parent.msgID)
					if len(p.refs) > 12 {
						p.refs = p.refs[len(p.refs)-12:]
					}
					p.subject = replyPrefix[p.lang%len(replyPrefix)] + strings.TrimPrefix(parent.subject, replyPrefix[p.lang%len(replyPrefix)])
					if !p.date.After(parent.date) {
						p.date = parent.date.Add(time.Duration(1+r.IntN(86400)) * time.Second)
						p.internal = p.date.Add(time.Duration(r.IntN(3*3600+1)) * time.Second)
						if (fs.year != 0 && p.internal.UTC().Year() != fs.year) || p.date.After(corpusEnd) {
							p.date, p.internal = parent.date, parent.internal // stay inside the year and the range
						}
					}
				}
			}
			p.flags = pickFlags(r, fs)
			add(p)
		}
	}
	// Guarantee that every keyword, \Answered and \Flagged appear, and the
	// \Deleted-not-expunged messages, on the first INBOX messages.
	inbox := byFolder["INBOX"]
	for i, idx := range inbox {
		p := &plans[idx]
		p.flags = removeFlag(p.flags, `\Deleted`)
		switch {
		case i < DeletedInInbox:
			p.flags = addFlag(p.flags, `\Deleted`)
		case i < DeletedInInbox+len(Keywords):
			p.flags = addFlag(p.flags, Keywords[i-DeletedInInbox])
		case i == DeletedInInbox+len(Keywords):
			p.flags = addFlag(addFlag(p.flags, `\Answered`), `\Flagged`)
		}
	}
	// Cross-folder duplicates: exact copies of INBOX and Sent messages.
	sources := append(append([]int(nil), byFolder["INBOX"][DeletedInInbox:]...), byFolder["Sent"]...)
	perm := r.Perm(len(sources))
	for i := 0; i < l.cross; i++ {
		src := plans[sources[perm[i%len(perm)]]]
		src.folder = crossDupTargets[i%len(crossDupTargets)]
		src.flags = []string{`\Seen`}
		src.kind += "+dup"
		src.dup = true
		byFolder[src.folder] = append(byFolder[src.folder], len(plans))
		plans = append(plans, src)
	}
	// Same-folder duplicates: some messages appear twice more.
	spaces := byFolder[spacesFolder]
	for i := 0; i < l.sameSrc && i < len(spaces); i++ {
		src := plans[spaces[i*len(spaces)/l.sameSrc]]
		src.kind += "+dup"
		src.dup = true
		plans = append(plans, src, src)
	}
	for i := 0; i < o.BigFolder; i++ {
		d := randDate(0)
		p := msgPlan{folder: BigFolderName, kind: "text", date: d, internal: d.Add(time.Duration(r.IntN(3*3600+1)) * time.Second),
			lang: langEN, msgID: msgID("example.com"), subject: fmt.Sprintf("bulk message %d", i), small: true}
		if r.IntN(5) > 0 {
			p.flags = []string{`\Seen`}
		}
		add(p)
	}
	if o.Huge {
		d := randDate(0)
		add(msgPlan{folder: "INBOX", kind: "huge", date: d, internal: d.Add(time.Minute), msgID: msgID("example.com"), subject: "Huge attachment", flags: []string{`\Seen`}})
	}
	// Order by folder (creation order), keeping plan order within a folder.
	order := map[string]int{}
	for i, fs := range l.folderList {
		order[fs.Name] = i
	}
	order[BigFolderName] = len(l.folderList)
	sort.SliceStable(plans, func(i, j int) bool { return order[plans[i].folder] < order[plans[j].folder] })
	return plans
}

func pickFlags(r *rand.Rand, fs folderSpec) []string {
	var fl []string
	if r.Float64() < fs.seen {
		fl = append(fl, `\Seen`)
	}
	switch fs.Name {
	case "Drafts":
		return addFlag(fl, `\Draft`)
	case "Junk":
		return addFlag(fl, "$Junk")
	}
	if fs.Name != "Sent" && r.Float64() < 0.10 {
		fl = append(fl, `\Answered`)
	}
	if r.Float64() < 0.05 {
		fl = append(fl, `\Flagged`)
	}
	kw := []struct {
		k string
		p float64
	}{{"$Forwarded", 0.04}, {"$MDNSent", 0.01}, {"$NotJunk", 0.01}, {"$label1", 0.02}, {"$label2", 0.01}, {"Important", 0.02}, {"ToDo", 0.01}, {ZimbraTagKeyword, 0.002}}
	for _, k := range kw {
		if r.Float64() < k.p {
			fl = append(fl, k.k)
		}
	}
	if strings.HasPrefix(fs.Name, "Work") && r.Float64() < 0.2 {
		fl = append(fl, "Work")
	}
	sort.Strings(fl)
	return fl
}

func addFlag(fl []string, f string) []string {
	for _, x := range fl {
		if x == f {
			return fl
		}
	}
	fl = append(append([]string(nil), fl...), f)
	sort.Strings(fl)
	return fl
}

func removeFlag(fl []string, f string) []string {
	var out []string
	for _, x := range fl {
		if x != f {
			out = append(out, x)
		}
	}
	return out
}

// Generate builds the corpus of one user. It is deterministic: the same user
// and options always give the same bytes. It renders messages on all CPUs.
func Generate(user string, o Options) *Account {
	a := &Account{User: user}
	plans := plan(o)
	if plans != nil {
		a.Mail.Folders = Folders()
		if o.BigFolder > 0 {
			a.Mail.Folders = append(a.Mail.Folders, Folder{Name: BigFolderName, Subscribed: true})
		}
		a.Mail.Messages = make([]Message, len(plans))
		var wg sync.WaitGroup
		work := make(chan int, 64)
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for i := range work {
					a.Mail.Messages[i] = render(user, o.Seed, &plans[i])
				}
			})
		}
		for i := range plans {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	a.Calendars, a.AddressBooks = generateDAV(user, o)
	return a
}

// EachMessage renders the messages of Generate(user, o) one at a time, in
// the same order, and calls fn with each; it stops at fn's first error and
// returns it. It holds only a few messages in memory, for benchmarks that
// write the reference corpus to disk or a server.
func EachMessage(user string, o Options, fn func(Message) error) error {
	plans := plan(o)
	const ahead = 8
	type slot struct {
		m    Message
		done chan struct{}
	}
	slots := make(chan *slot, ahead)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(slots)
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		for i := range plans {
			s := &slot{done: make(chan struct{})}
			select {
			case <-stop:
				return
			default:
			}
			select {
			case slots <- s:
			case <-stop:
				return
			}
			sem <- struct{}{}
			go func() {
				s.m = render(user, o.Seed, &plans[i])
				<-sem
				close(s.done)
			}()
		}
	})
	var err error
	for s := range slots {
		<-s.done
		if err == nil {
			if err = fn(s.m); err != nil {
				close(stop)
			}
		}
	}
	wg.Wait()
	return err
}
