// Checks of the deployment artifacts (Dockerfile, compose.yaml, deploy/). These machines
// have no Docker engine, so the image is not built here: the tests build the binary
// exactly as the Dockerfile does and read the compose file, the nginx config and the
// tally config it mounts, and check that they agree with each other and with Tally.
package deploy_test

import (
	"bufio"
	"debug/elf"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"tally/app"
	"tally/config"
)

const root = ".." // the module root, where Dockerfile and compose.yaml live

// dockerfile is the Dockerfile as instructions: the keyword and the rest of the line,
// by stage (a FROM starts one).
type instruction struct{ op, arg string }

func readDockerfile(t *testing.T) [][]instruction {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]instruction
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, arg, _ := strings.Cut(line, " ")
		op = strings.ToUpper(op)
		if op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %q before the first FROM", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], instruction{op, strings.TrimSpace(arg)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a run stage", len(stages))
	}
	return stages
}

// shellWords splits a RUN line as sh would for the simple words it uses: spaces
// separate, double quotes group.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// The Dockerfile's build command, run here with its own flags, makes a static binary
// that runs (on a distroless image, without libc); the image runs it as a non-root user
// with no shell; and the build stage copies every package the binary is built from.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	stages := readDockerfile(t)
	build, run := stages[0], stages[len(stages)-1]

	var words []string
	for _, in := range build {
		if in.op == "RUN" && strings.Contains(in.arg, "go build") {
			words = shellWords(in.arg)
		}
	}
	if words == nil {
		t.Fatal("Dockerfile: no RUN … go build in the build stage")
	}
	// VAR=value words before the command are its environment.
	env := os.Environ()
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		env = append(env, words[i])
	}
	if !slices.Contains(words[:i], "CGO_ENABLED=0") || !slices.Contains(words, "-trimpath") {
		t.Fatalf("Dockerfile's build is not CGO_ENABLED=0 with -trimpath: %q", words)
	}
	args := slices.Clone(words[i:])
	out := filepath.Join(t.TempDir(), "tally")
	for j := range args {
		args[j] = strings.NewReplacer("${VERSION}", "v0.0.0-deploytest", "${COMMIT}", "c0ffee").Replace(args[j])
		if j > 0 && args[j-1] == "-o" {
			args[j] = out
		}
	}
	if args[0] != "go" {
		t.Fatalf("Dockerfile's build runs %q, want go", args[0])
	}
	cmd := exec.Command("go", args[1:]...)
	cmd.Dir, cmd.Env = root, env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build, %q: %v\n%s", args, err, b)
	}

	bin, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary asks for a dynamic loader: distroless/static has none")
		}
	}
	if libs, _ := bin.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary links %v dynamically", libs)
	}
	got, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(got), "v0.0.0-deploytest") || !strings.Contains(string(got), "c0ffee") {
		t.Fatalf("tally version: %v\n%s", err, got)
	}

	// The run stage: distroless or scratch, a non-root user, no RUN (there is no shell),
	// the binary as entrypoint, serving on the port it exposes.
	from := run[0].arg
	if !strings.HasPrefix(from, "gcr.io/distroless/static") && from != "scratch" {
		t.Fatalf("run stage FROM %s, want distroless/static or scratch", from)
	}
	var user, expose, entrypoint, listen string
	for _, in := range run {
		switch in.op {
		case "RUN":
			t.Fatalf("run stage has RUN %s: the image has no shell", in.arg)
		case "USER":
			user = in.arg
		case "EXPOSE":
			expose = in.arg
		case "ENTRYPOINT":
			entrypoint = in.arg
		case "ENV":
			if v, ok := strings.CutPrefix(in.arg, "TALLY_LISTEN="); ok {
				listen = v
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Fatalf("run stage USER %q, want a non-root user", user)
	}
	if entrypoint != `["/tally"]` || listen != ":"+expose {
		t.Fatalf("ENTRYPOINT %s, EXPOSE %s, TALLY_LISTEN %s: want /tally listening on the exposed port", entrypoint, expose, listen)
	}

	// Every directory of the module the binary is built from is copied in.
	deps, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.ImportPath}}{{end}}{{end}}", "tally/cmd/tally").Output()
	if err != nil {
		t.Fatal(err)
	}
	copied := map[string]bool{}
	for _, in := range build {
		if in.op == "COPY" {
			for _, w := range strings.Fields(in.arg) {
				copied[strings.TrimSuffix(w, "/")] = true
			}
		}
	}
	for _, pkg := range strings.Fields(string(deps)) {
		top, _, _ := strings.Cut(strings.TrimPrefix(pkg, "tally/"), "/")
		if !copied[top] {
			t.Errorf("the build stage does not COPY %s/ (package %s)", top, pkg)
		}
	}
}

type composeFile struct {
	Services map[string]service
	Volumes  map[string]any
}

type service struct {
	Build       map[string]string
	Image       string
	Command     []string
	Environment map[string]string
	Volumes     []string
	Ports       []string
	DependsOn   yaml.Node `yaml:"depends_on"`
	Healthcheck struct{ Test []string }
	ReadOnly    bool     `yaml:"read_only"`
	Tmpfs       []string `yaml:"tmpfs"`
	StopGrace   string   `yaml:"stop_grace_period"`
}

// dependsOn reads depends_on in either of its forms: a list of names, or a map of name
// to condition.
func (s service) dependsOn(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch s.DependsOn.Kind {
	case 0:
	case yaml.SequenceNode:
		var names []string
		if err := s.DependsOn.Decode(&names); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			out[n] = "service_started"
		}
	default:
		var m map[string]struct{ Condition string }
		if err := s.DependsOn.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for n, c := range m {
			out[n] = c.Condition
		}
	}
	return out
}

// interpolation is compose's ${NAME}, ${NAME:?message}, ${NAME:-default}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[?-][^}]*)?\}`)

// uncommented drops the YAML comment lines, whose ${NAME} are prose.
func uncommented(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// configVars is tally's ${NAME} in its config file.
var configVars = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// The compose file runs what the README says: Postgres, migrations once, two `tally
// serve` replicas built from the Dockerfile with the mounted config and every variable
// that config needs, and nginx in front on one port, sending to exactly those replicas
// on the port they listen on. The mounted config loads with that environment.
func TestComposeIsConsistent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	// What compose would substitute from the shell or .env: a value per variable.
	shell := func(s string) string {
		return interpolation.ReplaceAllString(s, "from-shell-$1")
	}

	pg, ok := cf.Services["postgres"]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") || len(pg.Healthcheck.Test) == 0 {
		t.Fatalf("postgres service: %+v", pg)
	}
	pgUser, pgDB, pgPass := pg.Environment["POSTGRES_USER"], pg.Environment["POSTGRES_DB"], shell(pg.Environment["POSTGRES_PASSWORD"])
	if !slices.ContainsFunc(pg.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/var/lib/postgresql/data") }) {
		t.Fatalf("postgres keeps its data in no volume: %v", pg.Volumes)
	}

	var replicas []string
	for name, s := range cf.Services {
		if len(s.Command) == 0 || (s.Command[0] != "serve" && s.Command[0] != "migrate") {
			continue
		}
		if s.Command[0] == "serve" {
			replicas = append(replicas, name)
		}
		if s.Build["context"] != "." || s.Build["dockerfile"] != "Dockerfile" {
			t.Errorf("%s is not built from the Dockerfile: %v", name, s.Build)
		}
		// The config it is given is the one this repository ships, mounted read-only.
		if len(s.Command) != 3 || s.Command[1] != "--config" {
			t.Fatalf("%s command %q, want [serve|migrate --config PATH]", name, s.Command)
		}
		mount := "./deploy/tally.yaml:" + s.Command[2] + ":ro"
		if !slices.Contains(s.Volumes, mount) {
			t.Errorf("%s does not mount %s (volumes %v)", name, mount, s.Volumes)
		}
		// Every ${NAME} the config uses is in the service's environment.
		cfgRaw, err := os.ReadFile(filepath.Join(root, "deploy", "tally.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range configVars.FindAllStringSubmatch(uncommented(string(cfgRaw)), -1) {
			if _, ok := s.Environment[m[1]]; !ok {
				t.Errorf("%s: deploy/tally.yaml needs %s, which the service's environment lacks", name, m[1])
			}
		}
		// The database URL is the postgres service's database, user and password.
		u, err := url.Parse(shell(s.Environment["TALLY_DATABASE_URL"]))
		if err != nil {
			t.Fatal(err)
		}
		pass, _ := u.User.Password()
		if u.Scheme != "postgres" || u.Hostname() != "postgres" || u.Port() != "5432" || u.User.Username() != pgUser ||
			pass != pgPass || strings.TrimPrefix(u.Path, "/") != pgDB {
			t.Errorf("%s TALLY_DATABASE_URL %s is not the postgres service's (user %s, db %s)", name, u.Redacted(), pgUser, pgDB)
		}
		// The config loads, as `tally check` would load it, with that environment.
		env := func(k string) string { return shell(s.Environment[k]) }
		cfg, err := config.Load(filepath.Join(root, "deploy", "tally.yaml"), env)
		if err != nil {
			t.Fatalf("%s: deploy/tally.yaml does not load with the service's environment: %v", name, err)
		}
		if cfg.Listen != ":8080" {
			t.Errorf("%s listens on %q, want :8080 (the Dockerfile's EXPOSE, nginx's upstream port)", name, cfg.Listen)
		}
		// A read-only root still needs a writable /tmp: XLSX reports spill to it, a few
		// hundred bytes a row, so on disk (a volume), not in memory (a tmpfs).
		if s.ReadOnly && !slices.Contains(s.Volumes, "/tmp") {
			t.Errorf("%s has a read-only root file system and no volume at /tmp", name)
		}
		if slices.Contains(s.Tmpfs, "/tmp") {
			t.Errorf("%s keeps /tmp in memory: a large XLSX report would fill it", name)
		}
		deps := s.dependsOn(t)
		if s.Command[0] == "migrate" {
			if deps["postgres"] != "service_healthy" {
				t.Errorf("migrate starts before postgres is healthy: %v", deps)
			}
			continue
		}
		if deps["migrate"] != "service_completed_successfully" {
			t.Errorf("%s starts before migrations finished: %v", name, deps)
		}
		if d, err := time.ParseDuration(s.StopGrace); err != nil || d <= app.ShutdownTimeout {
			t.Errorf("%s stop_grace_period %q: want longer than the %s tally drains requests for", name, s.StopGrace, app.ShutdownTimeout)
		}
	}
	slices.Sort(replicas)
	if len(replicas) < 2 {
		t.Fatalf("replicas %v, want two `tally serve` services", replicas)
	}

	// nginx: one published port, sending to exactly the replicas on :8080.
	proxy, ok := cf.Services["proxy"]
	if !ok || len(proxy.Ports) != 1 || !strings.HasSuffix(proxy.Ports[0], ":80") ||
		!slices.Contains(proxy.Volumes, "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro") {
		t.Fatalf("proxy service: %+v", proxy)
	}
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var upstream []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([a-z0-9-]+):(\d+)`).FindAllStringSubmatch(string(conf), -1) {
		if m[2] != "8080" {
			t.Errorf("nginx sends to %s:%s, tally listens on 8080", m[1], m[2])
		}
		upstream = append(upstream, m[1])
	}
	slices.Sort(upstream)
	if !slices.Equal(upstream, replicas) {
		t.Fatalf("nginx upstream %v, compose replicas %v", upstream, replicas)
	}
	if !regexp.MustCompile(`(?m)^\s*listen\s+80;`).Match(conf) {
		t.Fatal("nginx does not listen on 80, the port compose publishes")
	}
}
