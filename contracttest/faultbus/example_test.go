package faultbus_test

import (
	"context"
	"fmt"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/faultbus"
	"github.com/heddle-go/heddle/membus"
)

// About half the messages on heddle.tasks.> are lost, the same ones on
// every run with seed 7.
func Example() {
	b := membus.New()
	defer b.Close()
	fb, err := faultbus.Wrap(b.Connect(), faultbus.Config{Seed: 7, Rules: []faultbus.Rule{
		{Subject: "heddle.tasks.>", Drop: 0.5},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fb.Close()
	ctx := context.Background()
	for range 10 {
		_ = fb.Publish(ctx, &bus.Msg{Subject: "heddle.tasks.echo.standard", Data: []byte("{}")})
	}
	for _, f := range fb.Faults() {
		fmt.Println(f.Kind, f.Subject, f.N)
	}
	fmt.Printf("%+v\n", fb.Stats())
	// Output:
	// dropped heddle.tasks.echo.standard 5
	// dropped heddle.tasks.echo.standard 6
	// dropped heddle.tasks.echo.standard 9
	// dropped heddle.tasks.echo.standard 10
	// {Published:6 Dropped:4 Duplicated:0 Delayed:0 Reordered:0 Held:0}
}
