package corpus

import "testing"

func BenchmarkGenerateReference(b *testing.B) {
	for b.Loop() {
		Generate("user1", Options{})
	}
}

func BenchmarkEachMessageReference(b *testing.B) {
	for b.Loop() {
		var n int64
		if err := EachMessage("user1", Options{}, func(m Message) error { n += int64(len(m.Raw)); return nil }); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
	}
}

func BenchmarkDiffMailSmall(b *testing.B) {
	a := Generate("user1", Options{Seed: 7, Messages: 300})
	for b.Loop() {
		if d := DiffMail(a.Mail, a.Mail, nil); d != nil {
			b.Fatal(d)
		}
	}
}
