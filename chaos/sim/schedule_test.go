package sim

import (
	"errors"
	"reflect"
	"testing"
)

func mustSchedule(t *testing.T, seed int64, steps, validators int) []Step {
	t.Helper()
	s, err := Schedule(seed, steps, validators)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScheduleIsAPureFunctionOfTheSeed(t *testing.T) {
	a := mustSchedule(t, 42, 500, 4)
	if !reflect.DeepEqual(a, mustSchedule(t, 42, 500, 4)) {
		t.Fatal("two schedules of one seed differ")
	}
	if reflect.DeepEqual(a, mustSchedule(t, 43, 500, 4)) {
		t.Fatal("seeds 42 and 43 give the same schedule")
	}
	if got := mustSchedule(t, 42, 100, 4); !reflect.DeepEqual(got, a[:100]) {
		t.Fatal("a shorter schedule is not a prefix of the longer one")
	}
}

func TestScheduleRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name              string
		steps, validators int
	}{
		{"no steps", 0, 4},
		{"negative steps", -1, 4},
		{"too many steps", MaxSteps + 1, 4},
		{"no validators", 10, 0},
		{"too many validators", 10, MaxValidators + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Schedule(1, tc.steps, tc.validators)
			if !errors.Is(err, ErrOptions) || s != nil {
				t.Fatalf("Schedule(1, %d, %d) = %d steps, %v", tc.steps, tc.validators, len(s), err)
			}
		})
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
		for i, s := range mustSchedule(t, seed, 300, 3) {
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
