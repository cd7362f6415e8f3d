package main

import "testing"

func TestSpreadOf(t *testing.T) {
	cases := []struct {
		in            []float64
		med, min, max float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
	}
	for _, c := range cases {
		s := spreadOf(c.in)
		if s.median != c.med || s.min != c.min || s.max != c.max || s.n != len(c.in) {
			t.Errorf("spreadOf(%v) = %+v, want median %v min %v max %v", c.in, s, c.med, c.min, c.max)
		}
	}
	if s := spreadOf(nil); s.n != 0 {
		t.Errorf("spreadOf(nil).n = %d, want 0", s.n)
	}
}

func TestRatiosSkipFailedRounds(t *testing.T) {
	got := ratios([]float64{2, 0, 6, 8}, []float64{1, 1, 0, 4})
	want := []float64{2, 2}
	if len(got) != len(want) {
		t.Fatalf("ratios = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ratios = %v, want %v", got, want)
		}
	}
}

func TestParseTimes(t *testing.T) {
	el, cpu, err := parseTimes("noise\nelapsed_ns=1500\ncpu_ns=700\n")
	if err != nil || el != 1500 || cpu != 700 {
		t.Errorf("parseTimes = %v, %v, %v; want 1.5us, 700ns, nil", el, cpu, err)
	}
	if _, _, err := parseTimes("cpu_ns=5\n"); err == nil {
		t.Error("parseTimes without elapsed_ns: no error")
	}
	if _, _, err := parseTimes("elapsed_ns=x\n"); err == nil {
		t.Error("parseTimes with a bad number: no error")
	}
}
