package imapcopy

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/emersion/go-imap/v2"
)

// The default proof and its sample.
//
// Every message is checked on both sides by RFC822.SIZE, FLAGS (keywords
// included), INTERNALDATE and its Message-ID and Date header fields: a
// message missing, duplicated, or with a changed size, flag, keyword or
// date fails the proof. Those fetches cost the destination link well under
// 1% of the message bytes. On top, a random sample of the copied messages
// is read whole on both sides and compared by SHA-256. With a sample
// fraction f, one message whose body changed but kept its size (and its
// Message-ID and Date) is caught with probability f per run (at least
// MinVerifySample/n in a folder of n messages; less for a message too large
// for the sample's byte cap of 2f of the folder); k such messages are all
// missed with probability (1-f)^k: 0.95^20 ≈ 36%, 0.95^100 ≈ 0.6% for the
// default f = 5%. The sample reads about f of the folder's bytes from the
// destination (and as much from the source), and never more than 2f of
// them plus a few KiB per folder: at most 10% for the default.
// DeepVerify reads every message whole instead.
const (
	// DefaultVerifySample is the fraction of copied messages whose whole
	// bodies the default proof compares.
	DefaultVerifySample = 0.05
	// MinVerifySample is the fewest messages per folder the sample reads
	// (all of them when the folder holds fewer), as far as they fit in the
	// folder's byte budget (see pickSample).
	MinVerifySample = 3
	// ProofDeep names the byte-for-byte proof (DeepVerify).
	ProofDeep = "deep"
)

// sampleFraction is the fraction the default proof samples; 0 when off.
func (c *Copier) sampleFraction() float64 {
	switch {
	case c.VerifySample < 0:
		return 0
	case c.VerifySample == 0:
		return DefaultVerifySample
	case c.VerifySample > 1:
		return 1
	}
	return c.VerifySample
}

// Proof names the end-of-run proof the Copier runs, as reports print it:
// ProofDeep, or "fingerprint + 5% sample" for the default.
func (c *Copier) Proof() string {
	if c.DeepVerify {
		return ProofDeep
	}
	f := c.sampleFraction()
	if f == 0 {
		return "fingerprint"
	}
	return fmt.Sprintf("fingerprint + %s%% sample", formatPercent(f))
}

func formatPercent(f float64) string {
	p := f * 100
	if p == math.Trunc(p) {
		return fmt.Sprintf("%d", int(p))
	}
	return fmt.Sprintf("%.2g", p)
}

// sampleScore maps (seed, folder, source UID) to [0, 1): the message is in
// the sample when its score is below the fraction. A seed reproduces the
// sample.
func sampleScore(seed uint64, folder string, uid imap.UID) float64 {
	h := fnv.New64a()
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint32(b[8:], uint32(uid))
	h.Write(b[:])
	h.Write([]byte(folder))
	// FNV mixes its last bytes poorly; a PCG step spreads them.
	r := rand.New(rand.NewPCG(h.Sum64(), seed))
	return r.Float64()
}

// pickSample chooses the pairs whose bodies the proof reads: in the order
// of their scores, every exact pair scoring below f (a uniform draw: f of
// the messages, f of the bytes on average), then more up to
// MinVerifySample pairs, each only while the sample stays within 2f of
// the folder's bytes plus sampleSlack. The cap keeps one run over a few
// large messages within its budget; a message too large for what is left
// of it is passed over, so its odds are below f. Ambiguous pairs (several
// source messages share a fingerprint, so which copy is whose is unknown)
// are left out: their bodies could differ without anything being wrong.
func pickSample(pairs []verifyPair, f float64, seed uint64, folder string) []verifyPair {
	if f <= 0 {
		return nil
	}
	type scored struct {
		p verifyPair
		s float64
	}
	var cand []scored
	var total int64
	for _, p := range pairs {
		total += p.size
		if p.exact {
			cand = append(cand, scored{p, sampleScore(seed, folder, p.src)})
		}
	}
	sort.Slice(cand, func(i, j int) bool { return cand[i].s < cand[j].s })
	budget := int64(2*f*float64(total)) + sampleSlack
	var out []verifyPair
	var bytes int64
	for _, c := range cand {
		if c.s >= f && len(out) >= MinVerifySample {
			break
		}
		if bytes+c.p.size > budget {
			continue
		}
		out = append(out, c.p)
		bytes += c.p.size
	}
	sort.Slice(out, func(i, j int) bool { return out[i].src < out[j].src })
	return out
}

// sampleSlack is the bytes the floor of MinVerifySample may read beyond
// the fraction in a small folder.
const sampleSlack = 16 << 10

// sampleBodies reads the sampled messages whole on both sides (each
// connection has its mailbox selected) and counts those whose bytes
// differ into v.
func sampleBodies(srcConn, dstConn *conn, sample []verifyPair, v *Verification) error {
	if len(sample) == 0 {
		return nil
	}
	srcUIDs := make([]imap.UID, len(sample))
	dstUIDs := make([]imap.UID, len(sample))
	for i, p := range sample {
		srcUIDs[i], dstUIDs[i] = p.src, p.dst
	}
	srcFP, err := wholePrints(srcConn, srcUIDs)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	dstFP, err := wholePrints(dstConn, dstUIDs)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	for _, p := range sample {
		s, sok := srcFP[p.src]
		d, dok := dstFP[p.dst]
		if !sok {
			continue // expunged from the source since: nothing to compare
		}
		v.Sampled++
		if !dok || s != d {
			v.BodyMismatches++
			if len(v.BodyExamples) < 10 {
				v.BodyExamples = append(v.BodyExamples, p.src)
			}
		}
	}
	return nil
}

// wholePrints hashes the messages of uids whole.
func wholePrints(cn *conn, uids []imap.UID) (map[imap.UID]string, error) {
	out := make(map[imap.UID]string, len(uids))
	for start := 0; start < len(uids); start += uidChunk {
		var set imap.UIDSet
		set.AddNum(uids[start:min(start+uidChunk, len(uids))]...)
		got, err := fingerprintsOf(cn, set, len(set), true)
		if err != nil {
			return nil, err
		}
		for _, pr := range got {
			out[pr.UID] = pr.fp
		}
	}
	return out, nil
}
