package sim

import (
	"reflect"
	"testing"
)

func TestScheduleIsAPureFunctionOfTheSeed(t *testing.T) {
	a := Schedule(42, 500, 4, numOperators)
	b := Schedule(42, 500, 4, numOperators)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two schedules of one seed differ")
	}
	if reflect.DeepEqual(a, Schedule(43, 500, 4, numOperators)) {
		t.Fatal("seeds 42 and 43 give the same schedule")
	}
	if got := Schedule(42, 100, 4, numOperators); !reflect.DeepEqual(got, a[:100]) {
		t.Fatal("a shorter schedule is not a prefix of the longer one")
	}
}

// TestScheduleShape checks, over many seeds, that schedules stay within
// their parameters and that the fault model is sensible: never three
// regions down, restarts only of crashed regions, every kind drawn.
func TestScheduleShape(t *testing.T) {
	seen := map[StepKind]int{}
	shapes := map[DutyShape]int{}
	for seed := range int64(200) {
		down := [numRegions]bool{}
		for i, s := range Schedule(seed, 300, 3, numOperators) {
			seen[s.Kind]++
			if s.Kind == KindUnknown || s.Region < 0 || s.Region >= numRegions || s.Other < 0 || s.Other >= numRegions ||
				s.Operator < 0 || s.Operator >= numOperators || s.Advance < 0 {
				t.Fatalf("seed %d step %d out of range: %+v", seed, i, s)
			}
			if (s.Kind == KindDuties) != (len(s.Duties) > 0) {
				t.Fatalf("seed %d step %d: %v with %d duties", seed, i, s.Kind, len(s.Duties))
			}
			for _, d := range s.Duties {
				shapes[d.Shape]++
				if d.Shape == ShapeUnknown || d.Key < 0 || d.Key >= 3 || d.Region < 0 || d.Region >= numRegions {
					t.Fatalf("seed %d step %d: bad duty %+v", seed, i, d)
				}
			}
			switch s.Kind {
			case KindCrash:
				down[s.Region] = true
			case KindRestart:
				if !down[s.Region] {
					t.Fatalf("seed %d step %d: restart of %s, which is up", seed, i, regionName(s.Region))
				}
				down[s.Region] = false
			case KindCutLink:
				if s.Region == s.Other {
					t.Fatalf("seed %d step %d: cut of a region's link to itself", seed, i)
				}
			}
			if s.Fault == FaultCrash {
				down[s.Region] = true
			}
			if down[0] && down[1] && down[2] {
				t.Fatalf("seed %d step %d: all three regions down", seed, i)
			}
		}
	}
	for k := KindDuties; k <= KindSettle; k++ {
		if seen[k] == 0 {
			t.Errorf("kind %v never drawn", k)
		}
	}
	for sh := ShapeAttest; sh <= ShapeStaleBlock; sh++ {
		if shapes[sh] == 0 {
			t.Errorf("duty shape %v never drawn", sh)
		}
	}
}
