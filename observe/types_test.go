package observe

import "testing"

func TestParseLSN(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0/0", 0, true},
		{"0/3000148", 0x3000148, true},
		{"1/0", 1 << 32, true},
		{"A/FF", 0xA<<32 | 0xFF, true},
		{"FFFFFFFF/FFFFFFFF", 1<<64 - 1, true},
		{"", 0, false},
		{"0", 0, false},
		{"0/", 0, false},
		{"/1", 0, false},
		{"G/1", 0, false},
		{"100000000/0", 0, false},
	}
	for _, c := range cases {
		got, ok := ParseLSN(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseLSN(%q) = %#x, %v; want %#x, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
