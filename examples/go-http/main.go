// A tiny web app for nhdev's Go example: answers every GET with a greeting.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

const greeting = "Hello from nhdev's Go example"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (pod %s)\n", greeting, host)
	})
	log.Printf("listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
