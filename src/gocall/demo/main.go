// Command demo is a tiny shop that gocall can call into:
//
//	gocall demo                      # builds and starts this program
//	gocall call <pid> 'Add(2, 3)'    # 5
//	gocall call <pid> 'Revenue()'    # what the shop earned so far
//
// A goroutine serves simulated orders forever, so there is always a
// goroutine running ordinary Go code for gocall to borrow.
package main

import (
	"fmt"
	"os"
	"sync/atomic"
)

var (
	orders       atomic.Int64 // orders served
	revenueCents atomic.Int64 // money taken, in cents
	lastReport   string       // refreshed by serve, readable by a debugger
)

// Add adds two numbers.
//
//go:noinline
func Add(a, b int) int { return a + b }

// Scale prices an order: 10% off with a discount.
//
//go:noinline
func Scale(price float64, discount bool) float64 {
	if discount {
		return price * 0.9
	}
	return price
}

// OrderCount is the number of orders served so far.
//
//go:noinline
func OrderCount() int { return int(orders.Load()) }

// Revenue is the money taken so far, in dollars.
//
//go:noinline
func Revenue() float64 { return float64(revenueCents.Load()) / 100 }

// Describe writes the receipt for order n.
//
//go:noinline
func Describe(n int) string {
	qty := Add(n%5, 1)
	return fmt.Sprintf("order #%d: %d x widget = $%.2f", n, qty, Scale(float64(qty)*2.50, n%3 == 0))
}

// serve takes orders as fast as it can.
func serve() {
	for n := 1; ; n++ {
		qty := Add(n%5, 1)
		price := Scale(float64(qty)*2.50, n%3 == 0)
		revenueCents.Add(int64(price*100 + 0.5))
		orders.Add(1)
		if n%100000 == 0 {
			lastReport = fmt.Sprintf("%s (%d orders, $%.2f so far)", Describe(n), OrderCount(), Revenue())
		}
	}
}

func main() {
	go serve()
	fmt.Printf("ready pid=%d\n", os.Getpid())
	select {} // serve runs until the process is killed
}
