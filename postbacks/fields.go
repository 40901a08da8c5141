package postbacks

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// Length limits, in characters (runes) of valid UTF-8 without control characters.
const (
	// maxUserLen is Gamezop's documented maximum for `sub`; DESIGN applies it to every
	// mapped user id so all sources share one wallet key space.
	maxUserLen = 100
	// maxIDLen bounds session, play, event and other provider ids: long enough for any
	// UUID or prefixed id seen in the docs, short enough to index.
	maxIDLen = 200
)

// Bounds on number literals. An amount has at most 20 integer and 18 fraction digits, so
// these only cut off literals no valid amount needs, before decimal materialises them
// ("1e999999999" would otherwise be a billion digits).
const (
	maxNumberLen      = 256
	maxNumberExponent = 1000
)

// node is an object inside a decoded body with its dotted path, so that messages name
// nested fields the way the provider does ("data.participant_id").
type node struct {
	obj  map[string]any
	path string
}

func (n node) name(key string) string { return joinPath(n.path, key) }

// get returns key's value. JSON null counts as absent: providers send null for "no value".
func (n node) get(key string) (any, bool) {
	v, ok := n.obj[key]
	return v, ok && v != nil
}

// lookup follows keys through nested objects without recording errors; it serves the
// fallback chains for undocumented payload shapes, where a missing or differently shaped
// candidate just means "try the next". An empty string counts as absent there too.
func (n node) lookup(keys ...string) (node, string, bool) {
	for _, k := range keys[:len(keys)-1] {
		v, ok := n.get(k)
		obj, isObj := v.(map[string]any)
		if !ok || !isObj {
			return node{}, "", false
		}
		n = node{obj: obj, path: n.name(k)}
	}
	last := keys[len(keys)-1]
	v, ok := n.get(last)
	if s, isStr := v.(string); !ok || (isStr && s == "") {
		return node{}, "", false
	}
	return n, last, true
}

// checker collects every bad field of one body, so the sender sees them all at once.
type checker struct {
	errs    []FieldError
	missing []FieldError // absent fields on undocumented mapping paths: quarantine, not 400
}

// miss records a field Tally maps rewards by that the body lacks, where the provider
// does not document the field: the event is kept quarantined instead of refused.
func (c *checker) miss(field, msg string) {
	c.missing = append(c.missing, FieldError{Field: field, Message: msg})
}

func (c *checker) fail(field, msg string) {
	c.errs = append(c.errs, FieldError{Field: field, Message: msg})
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: c.errs}
}

// unmapped wraps a decoded event whose mapping fields are missing; nil when none are.
func (c *checker) unmapped(ev rewards.Event) error {
	if len(c.missing) == 0 {
		return nil
	}
	return &UnmappedError{Event: ev, Missing: c.missing}
}

// present reports whether key has a value, recording "required" when it must and has not.
func (c *checker) present(n node, key string, required bool) (any, bool) {
	v, ok := n.get(key)
	if !ok && required {
		c.fail(n.name(key), "required")
	}
	return v, ok
}

// object returns the nested object at key.
func (c *checker) object(n node, key string, required bool) (node, bool) {
	v, ok := c.present(n, key, required)
	if !ok {
		return node{}, false
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		c.fail(n.name(key), "must be an object")
		return node{}, false
	}
	return node{obj: obj, path: n.name(key)}, true
}

// text returns a string field of 1..max characters without control characters. An
// optional field sent as "" is absent, as null is: providers send both for "no value".
func (c *checker) text(n node, key string, required bool, max int) (string, bool) {
	v, ok := c.present(n, key, required)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		c.fail(n.name(key), "must be a string")
		return "", false
	}
	if s == "" && !required {
		return "", false
	}
	if msg := textProblem(s, max); msg != "" {
		c.fail(n.name(key), msg)
		return "", false
	}
	return s, true
}

// ident returns a field that providers send as a string or as an integer (GamePush's
// player.id is a number, most other ids are strings). An integer becomes its canonical
// decimal form, so 685, 685.0 and 6.85e2 name the same id.
func (c *checker) ident(n node, key string, required bool, max int) (string, bool) {
	v, ok := c.present(n, key, required)
	if !ok || (v == "" && !required) {
		return "", false
	}
	return c.identValue(v, n.name(key), max)
}

func (c *checker) identValue(v any, field string, max int) (string, bool) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		d, ok := parseNumber(string(v))
		if !ok || !d.IsInteger() {
			c.fail(field, "must be a string or an integer")
			return "", false
		}
		s = d.String()
	default:
		c.fail(field, "must be a string or an integer")
		return "", false
	}
	if msg := textProblem(s, max); msg != "" {
		c.fail(field, msg)
		return "", false
	}
	return s, true
}

// firstIdent returns the first present candidate of a fallback chain; a present but
// invalid candidate is an error rather than a reason to try the next one. The chains are
// guesses at undocumented payloads, so when none is present the field is recorded as
// missing (the event is quarantined), not as invalid.
func (c *checker) firstIdent(n node, max int, chain ...[]string) (string, bool) {
	for _, keys := range chain {
		if at, key, ok := n.lookup(keys...); ok {
			return c.ident(at, key, true, max)
		}
	}
	names := make([]string, len(chain))
	for i, keys := range chain {
		names[i] = n.name(strings.Join(keys, "."))
	}
	c.miss(names[0], "missing (looked for any of "+strings.Join(names, ", ")+")")
	return "", false
}

// decimalField returns a non-negative decimal sent as a JSON number or a decimal string,
// and its literal, failing the field when it is neither or is negative. The literal is
// parsed exactly; it never passes through float64.
func (c *checker) decimalField(n node, key string, required bool) (decimal.Decimal, string, bool) {
	v, ok := c.present(n, key, required)
	if !ok {
		return decimal.Decimal{}, "", false
	}
	var lit string // "" for any other type, which parseNumber refuses
	switch v := v.(type) {
	case json.Number:
		lit = string(v)
	case string:
		lit = v
	}
	d, ok := parseNumber(lit)
	switch {
	case !ok:
		c.fail(n.name(key), "must be a decimal number or a decimal string")
	case d.Sign() < 0:
		c.fail(n.name(key), "must not be negative")
	default:
		return d, lit, true
	}
	return decimal.Decimal{}, "", false
}

// amount returns a non-negative decimal (decimalField) with at most rewards.Precision
// decimal places and within the ledger's range.
func (c *checker) amount(n node, key string, required bool) (decimal.Decimal, bool) {
	d, _, ok := c.decimalField(n, key, required)
	if !ok {
		return decimal.Decimal{}, false
	}
	switch {
	case rewards.DecimalPlaces(d) > rewards.Precision:
		c.fail(n.name(key), fmt.Sprintf("must have at most %d decimal places", rewards.Precision))
	case rewards.CheckAmount(d) != nil:
		c.fail(n.name(key), "too large")
	default:
		return d, true
	}
	return decimal.Decimal{}, false
}

// score returns a score: a non-negative decimal (decimalField). A score beyond the range
// Tally ranks and stores (rewards.CheckAmount's integer digits, rewards.Precision decimal
// places: idle games reach 1e+21) is not the sender's error, so the event is kept
// quarantined with the reason (miss), never refused: a refused signed webhook is dropped
// by its sender, and a kept one can be replayed by a version that reads it. The value is
// still returned, for the dedupe key.
func (c *checker) score(n node, key string) (decimal.Decimal, bool) {
	d, lit, ok := c.decimalField(n, key, true)
	if ok && (rewards.DecimalPlaces(d) > rewards.Precision || rewards.CheckAmount(d) != nil) {
		c.miss(n.name(key), fmt.Sprintf("%s is beyond the scores Tally ranks (at most %d integer digits and %d decimal places); kept for a version that reads it",
			lit, rewards.MaxIntegerDigits, rewards.Precision))
	}
	return d, ok
}

// count returns a non-negative integer sent as a JSON number or as a string holding one
// (providers do not document the types, and Gamezop already sends revenue as a string:
// refusing "163" would turn every such delivery into a 400), and its literal.
func (c *checker) count(n node, key string, required bool) (int64, string, bool) {
	v, ok := c.present(n, key, required)
	if !ok {
		return 0, "", false
	}
	var num string
	switch v := v.(type) {
	case json.Number:
		num = string(v)
	case string:
		num = v
	default:
		c.fail(n.name(key), "must be a non-negative integer")
		return 0, "", false
	}
	d, ok := parseNumber(num)
	switch {
	case !ok || !d.IsInteger() || d.Sign() < 0:
		c.fail(n.name(key), "must be a non-negative integer")
	case d.GreaterThan(decimal.NewFromInt(math.MaxInt64)):
		c.fail(n.name(key), "too large")
	default:
		return d.IntPart(), num, true
	}
	return 0, "", false
}

// timestamp returns an optional RFC 3339 time in UTC, recording a present but invalid
// time as an error (infoTime drops that error for informational times).
func (c *checker) timestamp(n node, key string) (*time.Time, bool) {
	v, ok := c.present(n, key, false)
	if !ok {
		return nil, false
	}
	s, isStr := v.(string)
	if !isStr {
		c.fail(n.name(key), "must be an RFC 3339 time")
		return nil, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		c.fail(n.name(key), "must be an RFC 3339 time")
		return nil, false
	}
	return checkYear(c, n.name(key), t.UTC())
}

// checkYear keeps times within what RFC 3339 (and so encoding/json and the inbox) can
// represent after conversion to UTC.
func checkYear(c *checker, field string, t time.Time) (*time.Time, bool) {
	if t.Year() < 1 || t.Year() > 9999 {
		c.fail(field, "out of range")
		return nil, false
	}
	return &t, true
}

// The info* readers take fields that no identity, dedupe key or amount depends on
// (DESIGN §3). Such a field is kept as sent in the raw body; the event carries its value
// when Tally understands it, and otherwise leaves it out. It never makes a 400: refusing
// a delivery over a field nothing needs would lose the event, and the sender would
// retry it forever.

// infoIdent returns an informational id, or "" when it is absent, empty or not an id.
func infoIdent(n node, key string, max int) string {
	v, ok := n.get(key)
	if !ok {
		return ""
	}
	var ck checker
	s, ok := ck.identValue(v, n.name(key), max)
	if !ok {
		return ""
	}
	return s
}

// infoCount returns an informational count, or 0 when it is absent or not a
// non-negative integer.
func infoCount(n node, key string) int64 {
	var ck checker
	v, _, ok := ck.count(n, key, false)
	if !ok {
		return 0
	}
	return v
}

// infoTime returns an informational RFC 3339 time, or nil when it is absent or not one.
func infoTime(n node, key string) *time.Time {
	var ck checker
	t, ok := ck.timestamp(n, key)
	if !ok {
		return nil
	}
	return t
}

// textProblem checks an id a provider sends: what addressProblem checks, and no Unicode
// noncharacters (U+FDD0..U+FDEF, U+FFFE and U+FFFF of every plane): they are not for
// interchange, and XML (an XLSX export) cannot hold U+FFFE or U+FFFF, so "bob\uFFFE" and
// "bob\uFFFF" would both be written as "bob\uFFFD"; and no U+FFFD, the replacement
// character, which is also what a lone UTF-16 surrogate escape decodes to
// (decodeObject): "\ud800" and "\ud801" would be one id.
func textProblem(s string, max int) string {
	if msg := addressProblem(s, max); msg != "" {
		return msg
	}
	for _, r := range s {
		switch {
		case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
			return fmt.Sprintf("must not contain Unicode noncharacters (found %U)", r)
		case r == unicode.ReplacementChar:
			return "must not contain U+FFFD or a lone UTF-16 surrogate escape (a character lost on the way, so two ids could read alike)"
		}
	}
	return ""
}

// userProblem is the receivers' rule for a user id: textProblem, and no _xD800_ to
// _xDFFF_, which an XLSX cell reads as a lost character ("bob_xD800_" reads "bob"), so
// finance's sheet could show one user's row under another's id. Other fields never
// reach a sheet and keep them.
func userProblem(s string) string {
	if msg := textProblem(s, maxUserLen); msg != "" {
		return msg
	}
	return surrogateProblem(s)
}

// surrogateProblem is what userProblem adds to textProblem: no escape an XLSX cell would
// read as another text than the id's.
func surrogateProblem(s string) string {
	if i := surrogateEscape(s); i >= 0 {
		return fmt.Sprintf("must not contain %q: an XLSX cell reads _xD800_ to _xDFFF_ as a lost character, so two ids could read alike", s[i:i+7])
	}
	if i := sharedEscape(s); i >= 0 {
		return fmt.Sprintf("must not contain %q: an XLSX cell reads _xHHHH_ as the character HHHH, and two such escapes sharing an underscore are not kept as written (%q reads %q), so two ids could read alike",
			s[i:i+13], "_x0041_x0042_", "_x0041B")
	}
	return ""
}

// sharedEscape is the index of the first _xHHHH_ whose closing underscore opens another
// (_x0041_x0042_) as the XLSX writer (excelize's bstrMarshal) reads the id, or -1. The
// writer escapes the escapes it finds from the left, without overlap, so it leaves the
// second as the character it names; except after _x005F_ (exactly so spelled), where it
// escapes the next one too, which reads back as written.
func sharedEscape(s string) int {
	for i := 0; i+7 <= len(s); {
		switch {
		case !xlsxEscapeAt(s, i):
			i++
		case s[i:i+7] == "_x005F_":
			i += 7
		case xlsxEscapeAt(s, i+6):
			return i
		default:
			i += 7
		}
	}
	return -1
}

// xlsxEscapeAt reports whether s holds _xHHHH_ at i.
func xlsxEscapeAt(s string, i int) bool {
	return i+7 <= len(s) && s[i] == '_' && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]) && s[i+6] == '_'
}

// userIdent is ident for a user id field (userProblem).
func (c *checker) userIdent(n node, key string) (string, bool) {
	s, ok := c.ident(n, key, true, maxUserLen)
	return s, ok && c.userOK(n.name(key), s)
}

// subIdent is userIdent for a Gamezop sub (SPP user-id, scores subId), which may be a
// signed token (subtoken.go): its signature, 22 base64url characters, can spell an
// _xHHHH_ escape by chance (one token in twenty million), and the wallet is the user
// inside it, never the token, so the rest of userProblem is held to the part before
// the signature (no escape spans its '.'). SubTokens.User checks the inner user; a
// property without sub tokens, whose wallet is the whole sub, checks it whole
// (CheckNewUserID, in app).
func (c *checker) subIdent(n node, key string) (string, bool) {
	s, ok := c.ident(n, key, true, maxUserLen)
	if !ok {
		return s, false
	}
	held := s
	if _, _, _, token := splitToken(s); token {
		held = s[:strings.LastIndexByte(s, '.')+1]
	}
	return s, c.userOK(n.name(key), held)
}

// userOK adds to a field that passed ident (textProblem) the rest of userProblem.
func (c *checker) userOK(field, s string) bool {
	if msg := surrogateProblem(s); msg != "" {
		c.fail(field, msg)
		return false
	}
	return true
}

// infoUser is infoIdent for a user id field: "" when it breaks userProblem.
func infoUser(n node, key string) string {
	s := infoIdent(n, key, maxUserLen) // "" unless it passes textProblem
	if surrogateProblem(s) != "" {
		return ""
	}
	return s
}

// surrogateEscape is the index of the first _xHHHH_ in s whose HHHH is a UTF-16
// surrogate (D800–DFFF), or -1. XLSX text escapes a character as _xHHHH_; a surrogate
// alone is no character, and readers (excelize among them) drop it, so the text
// "a_xD800_" would read as "a".
func surrogateEscape(s string) int {
	for i := 0; i+7 <= len(s); i++ {
		if xlsxEscapeAt(s, i) && (s[i+2] == 'D' || s[i+2] == 'd') && strings.IndexByte("89abcdefABCDEF", s[i+3]) >= 0 {
			return i
		}
	}
	return -1
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// addressProblem checks an id as the APIs take it: 1..max characters (runes, not bytes:
// a user id of 100 multibyte characters is valid) of valid UTF-8 without control
// characters (Unicode Cc), which would corrupt logs, CSV exports and terminals, and
// without format characters (Cf: bidi controls such as U+202E, zero-width characters,
// U+FEFF), which are invisible and would let two ids look alike, or one look like
// another, in finance's spreadsheets.
func addressProblem(s string, max int) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return "must not be empty"
	case n > max:
		return fmt.Sprintf("must be at most %d characters", max)
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return "must not contain control characters"
		case unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("must not contain invisible format characters (found %U)", r)
		}
	}
	return ""
}

// CheckUserID is the rule for every user id the APIs take in a path: "" when s is
// valid, else what is wrong with it. It admits every id a receiver accepts (textProblem
// is stricter), so every wallet a provider's events made can be addressed; and wallets
// made before the receivers refused noncharacters and U+FFFD stay addressable.
func CheckUserID(s string) string { return addressProblem(s, maxUserLen) }

// CheckProviderID is the receivers' rule for the ids providers send beside the user
// (a game, a leaderboard, an achievement): "" when s is one a receiver can carry, else
// what is wrong with it. The config holds its games and achievement ids to it: a rule on
// an id no event can carry would never pay.
func CheckProviderID(s string) string { return textProblem(s, maxIDLen) }

// CheckNewUserID is the receivers' rule for a user id: "" when a wallet may be made for
// s, else what is wrong with it. Stricter than CheckUserID: no noncharacters, U+FFFD or
// _xD800_…_xDFFF_, which an XLSX export cannot tell apart from other ids.
func CheckNewUserID(s string) string { return userProblem(s) }

// parseNumber parses a JSON number literal exactly. It enforces JSON's grammar itself
// (decimal.NewFromString alone accepts "+1", ".5", "01" and a Unicode minus, so the same
// amount could arrive spelled many ways) and bounds the literal's size first.
func parseNumber(lit string) (decimal.Decimal, bool) {
	if len(lit) > maxNumberLen || !isJSONNumber(lit) {
		return decimal.Decimal{}, false
	}
	if e := strings.IndexAny(lit, "eE"); e >= 0 {
		exp := strings.TrimLeft(lit[e+1:], "+-")
		exp = strings.TrimLeft(exp, "0")
		if len(exp) > 4 || (exp != "" && atoi(exp) > maxNumberExponent) {
			return decimal.Decimal{}, false
		}
	}
	d, err := decimal.NewFromString(lit)
	return d, err == nil
}

func atoi(digits string) int {
	n := 0
	for i := 0; i < len(digits); i++ {
		n = n*10 + int(digits[i]-'0')
	}
	return n
}

// isJSONNumber reports whether s is exactly a number as RFC 8259 §6 spells it.
func isJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// alpha2 normalises an ISO 3166-1 alpha-2 code: exactly two ASCII letters, upper-cased.
// It checks the shape, not the assigned list: an unlisted code simply matches no
// country multiplier.
func alpha2(s string) (string, bool) {
	if len(s) != 2 || !isASCIILetter(s[0]) || !isASCIILetter(s[1]) {
		return "", false
	}
	return strings.ToUpper(s), true
}

func isASCIILetter(b byte) bool { return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') }

func isASCIIAlnum(b byte) bool { return isASCIILetter(b) || (b >= '0' && b <= '9') }

// country returns an optional country code in upper-case alpha-2 (see countryCode),
// for a field that amounts depend on: a code that is present but not understood is a
// 400, since guessing would pay the wrong multiplier. An empty string counts as absent.
func (c *checker) country(n node, key string, subdivision bool) string {
	v, ok := c.present(n, key, false)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		c.fail(n.name(key), "must be a string")
		return ""
	}
	if cc, ok := countryCode(s, subdivision); ok {
		return cc
	}
	if subdivision {
		c.fail(n.name(key), "must be an ISO 3166-1 alpha-2 or ISO 3166-2 code")
	} else {
		c.fail(n.name(key), "must be an ISO 3166-1 alpha-2 code")
	}
	return ""
}

// infoCountry is country for an informational field: a code not understood is left out.
func infoCountry(n node, key string, subdivision bool) string {
	v, _ := n.get(key)
	s, _ := v.(string)
	cc, _ := countryCode(s, subdivision)
	return cc
}

// countryCode normalises s to upper-case alpha-2; "" is a valid absent code. With
// subdivision set it also accepts an ISO 3166-2 code ("IN-MH": alpha-2, hyphen, 1–3
// letters or digits) and keeps its country part.
func countryCode(s string, subdivision bool) (string, bool) {
	if s == "" {
		return "", true
	}
	if subdivision && len(s) >= 4 && len(s) <= 6 && s[2] == '-' {
		sub := s[3:]
		okSub := true
		for i := 0; i < len(sub); i++ {
			okSub = okSub && isASCIIAlnum(sub[i])
		}
		if cc, ok := alpha2(s[:2]); ok && okSub {
			return cc, true
		}
	}
	return alpha2(s)
}
