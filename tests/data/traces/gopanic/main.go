// A small Go service for clogs' tests: it logs through the standard log package, then an index
// out of range panics in a handler and takes the process down (the Go runtime prints the trace).
package main

import (
	"log"
	"os"
)

func pick(items []string, i int) string {
	return items[i]
}

func handle(order int) string {
	return pick([]string{"a", "b"}, order%5)
}

func main() {
	log.SetOutput(os.Stdout)
	for i := 0; i < 5; i++ {
		log.Printf("order %d received", 1000+i)
		if i < 2 {
			log.Printf("order %d routed to %s", 1000+i, handle(i))
		}
	}
	log.Printf("order %d routed to %s", 1005, handle(4))
}
