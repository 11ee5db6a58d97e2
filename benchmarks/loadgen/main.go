// loadgen: the serving benchmark's HTTP client (standard library only, built by
// bench_serving.py with `go build`). A Python client on the same two cores would cost the
// servers more CPU per request than they spend answering the bare endpoint; this one costs
// a fraction, and both servers get the very same client.
//
// Reads targets, one per line: URL, then optionally a tab and an Authorization header value.
// Runs -c workers for -warmup (not counted), then for -d, each sending the next target and
// reading the whole answer over a kept-alive connection. Prints one JSON object: requests,
// errors (non-2xx or transport failures), requests/s and latency percentiles of the 2xx,
// and with -contains, how many 2xx answers contained that text.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type target struct {
	url, auth string
}

type result struct {
	Requests      int            `json:"requests"`
	Errors        int            `json:"errors"`
	Statuses      map[string]int `json:"statuses"`
	FirstError    string         `json:"first_error,omitempty"`
	Seconds       float64        `json:"seconds"`
	RequestsPerS  float64        `json:"requests_per_s"`
	P50Ms         float64        `json:"p50_ms"`
	P90Ms         float64        `json:"p90_ms"`
	P99Ms         float64        `json:"p99_ms"`
	MaxMs         float64        `json:"max_ms"`
	Containing    int            `json:"containing"`
	Contains      string         `json:"contains,omitempty"`
	Concurrency   int            `json:"concurrency"`
	WarmupSeconds float64        `json:"warmup_seconds"`
}

func readTargets(path string) ([]target, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var targets []target
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		url, auth, _ := strings.Cut(line, "\t")
		targets = append(targets, target{url, auth})
	}
	return targets, scanner.Err()
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))]) / 1e6
}

func main() {
	path := flag.String("targets", "", "file of targets: URL[<TAB>Authorization value] per line")
	concurrency := flag.Int("c", 16, "concurrent connections")
	duration := flag.Duration("d", 20*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 3*time.Second, "unmeasured warm-up before it")
	contains := flag.String("contains", "", "count the 2xx answers containing this text")
	flag.Parse()
	targets, err := readTargets(*path)
	if err != nil || len(targets) == 0 {
		fmt.Fprintf(os.Stderr, "loadgen: no targets read from %q: %v\n", *path, err)
		os.Exit(2)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	var next atomic.Uint64
	var measuring atomic.Bool
	var mu sync.Mutex
	var latencies []time.Duration
	statuses := map[string]int{}
	errors, firstError, containing := 0, "", 0
	needle := []byte(*contains)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<16)
			localStatus := map[string]int{}
			localErrors, localFirst, localContaining := 0, "", 0
			for {
				select {
				case <-stop:
					mu.Lock()
					latencies = append(latencies, local...)
					for k, v := range localStatus {
						statuses[k] += v
					}
					errors += localErrors
					containing += localContaining
					if firstError == "" {
						firstError = localFirst
					}
					mu.Unlock()
					return
				default:
				}
				t := targets[next.Add(1)%uint64(len(targets))]
				request, _ := http.NewRequest("GET", t.url, nil)
				if t.auth != "" {
					request.Header.Set("Authorization", t.auth)
				}
				sent := time.Now()
				answer, err := client.Do(request)
				status, found := "transport", false
				if err == nil {
					var body []byte
					body, err = io.ReadAll(answer.Body)
					answer.Body.Close()
					status = fmt.Sprint(answer.StatusCode)
					found = len(needle) > 0 && bytes.Contains(body, needle)
				}
				took := time.Since(sent)
				if !measuring.Load() {
					continue
				}
				localStatus[status]++
				if err != nil || answer.StatusCode/100 != 2 {
					localErrors++
					if localFirst == "" {
						localFirst = fmt.Sprintf("%s %v", status, err)
					}
					continue
				}
				local = append(local, took)
				if found {
					localContaining++
				}
			}
		}()
	}
	time.Sleep(*warmup)
	measuring.Store(true)
	started := time.Now()
	time.Sleep(*duration)
	measuring.Store(false)
	elapsed := time.Since(started).Seconds()
	close(stop)
	wg.Wait()

	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	out := result{
		Requests:      len(latencies) + errors,
		Errors:        errors,
		Statuses:      statuses,
		FirstError:    firstError,
		Seconds:       elapsed,
		RequestsPerS:  float64(len(latencies)) / elapsed,
		P50Ms:         percentile(latencies, 0.50),
		P90Ms:         percentile(latencies, 0.90),
		P99Ms:         percentile(latencies, 0.99),
		Containing:    containing,
		Contains:      *contains,
		Concurrency:   *concurrency,
		WarmupSeconds: warmup.Seconds(),
	}
	if len(latencies) > 0 {
		out.MaxMs = float64(latencies[len(latencies)-1]) / 1e6
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
}
