package corpus

import "testing"

func BenchmarkGenerateReference(b *testing.B) {
	for b.Loop() {
		Generate("user1", Options{})
	}
}
