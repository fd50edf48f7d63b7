package contracttest

import (
	"slices"
	"testing"
)

func TestEveryWireFixtureFileIsInTheManifest(t *testing.T) {
	fixtures, err := loadWireFixtures()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, f := range fixtures {
		file := f.Name + ".json"
		if listed[file] {
			t.Errorf("%s is listed twice", file)
		}
		listed[file] = true
	}
	files, err := wireFilesOnDisk()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !listed[f] {
			t.Errorf("%s is not in the manifest", f)
		}
	}
	if !slices.Equal(slices.Sorted(func(yield func(string) bool) {
		for k := range listed {
			if !yield(k) {
				return
			}
		}
	}), slices.Sorted(slices.Values(files))) {
		t.Errorf("manifest and files differ")
	}
}
