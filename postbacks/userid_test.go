package postbacks

import (
	"strings"
	"testing"

	"tally/rewards"
)

// userBodies builds, for each source, a body whose user id field holds the raw JSON
// value v, and names that field as the 400 must.
func userBodies(v string) []struct {
	src   rewards.Source
	field string
	body  []byte
} {
	return []struct {
		src   rewards.Source
		field string
		body  []byte
	}{
		{rewards.SourceGamezopSPP, "user-id", with(sppBase, "user-id", v)},
		{rewards.SourceGamezopScores, "subId", with(scoreBase, "subId", v)},
		{rewards.SourceGamePush, "player.id", with(gpBase, "player", `{"id":`+v+`}`)},
		{rewards.SourceTrackScore, "data.participant_id", with(tsBase, "data", `{"leaderboard_id":"lb","participant_id":`+v+`,"new_score":1}`)},
	}
}

// Unicode format characters (category Cf) are invisible: refused in every user id field
// of every source, as control characters are, with a 400 naming the field.
func TestUserIDsRefuseFormatCharacters(t *testing.T) {
	chars := map[string]string{
		"right-to-left override U+202E": `"abc\u202Edef"`,
		"left-to-right isolate U+2066":  `"abc\u2066"`,
		"zero-width space U+200B":       `"a\u200Bb"`,
		"zero-width joiner U+200D":      `"a\u200Db"`,
		"byte order mark U+FEFF":        `"\uFEFFsub1"`,
		"soft hyphen U+00AD":            `"sub\u00AD1"`,
		"raw U+202E, not escaped":       "\"sub\u202e1\"",
		"control U+0085 (already)":      `"a\u0085b"`,
	}
	for name, v := range chars {
		for _, c := range userBodies(v) {
			t.Run(string(c.src)+" "+name, func(t *testing.T) {
				_, err := parseAuthed(c.src, c.body)
				wantFields(t, err, c.field)
			})
		}
	}
	if msg := CheckUserID("abc\u202edef"); msg != "must not contain invisible format characters (found U+202E)" {
		t.Errorf("CheckUserID message %q", msg)
	}
	// Noncharacters too: XML cannot hold U+FFFE or U+FFFF, so an XLSX export would have
	// written both of these ids as "bob\uFFFD".
	for _, v := range []string{`"bob\uFFFE"`, `"bob\uFFFF"`, `"bob\uFDD0"`, `"bob\uDBFF\uDFFF"`} {
		for _, c := range userBodies(v) {
			t.Run(string(c.src)+" noncharacter "+v, func(t *testing.T) {
				_, err := parseAuthed(c.src, c.body)
				wantFields(t, err, c.field)
			})
		}
	}
	if msg := textProblem("bob\uFFFE", maxUserLen); msg != "must not contain Unicode noncharacters (found U+FFFE)" {
		t.Errorf("textProblem message %q", msg)
	}
	if msg := textProblem("bob\uFFFC\uFDCF\uFDF0\U0010FFFD", maxUserLen); msg != "" {
		t.Errorf("textProblem refused characters next to the noncharacters: %q", msg)
	}
	// The APIs still address such ids: a wallet made before the receivers refused them.
	if msg := CheckUserID("bob\uFFFE"); msg != "" {
		t.Errorf("CheckUserID(bob U+FFFE) = %q", msg)
	}
	// Other ids follow the same rule.
	_, err := parseSPP(with(sppBase, "session-id", `"s\u200B1"`))
	wantFields(t, err, "session-id")
}

// Every source accepts user ids that need escaping in a URL path, so the APIs must be
// able to address them (app's TestUserIDsInPaths).
func TestUserIDsWithURLCharactersAccepted(t *testing.T) {
	for _, id := range []string{"a/b", "100%", "a%2Fb", "a?b", "a#b", "a;b", "..", ".", "a b", " lead", "a+b", "ü日本😀", `a\b`} {
		for _, c := range userBodies(q(id)) {
			ev, err := parseAuthed(c.src, c.body)
			if err != nil || ev.User != id {
				t.Errorf("%s user %q: %q, %v", c.src, id, ev.User, err)
			}
		}
		if msg := CheckUserID(id); msg != "" {
			t.Errorf("CheckUserID(%q) = %q", id, msg)
		}
	}
}

// A lone UTF-16 surrogate escape, which JavaScript's JSON.stringify writes for a string
// cut inside an emoji, costs the event nothing in a field Tally does not read (a
// GamePush player's display name, a field a provider added), and is a 400 naming the
// field in one it reads: it decodes to U+FFFD, and "\ud800" and "\ud801" would be one
// user.
func TestLoneSurrogates(t *testing.T) {
	for _, c := range []struct {
		src  rewards.Source
		body []byte
	}{
		{rewards.SourceGamePush, with(gpBase, "player", `{"id":1820283,"name":"Player \ud83d","projectId":4}`)},
		{rewards.SourceGamezopSPP, with(sppBase, "x-added", `"\ud800 and \udc00"`)},
		{rewards.SourceTrackScore, with(tsBase, "meta", `{"note":"\ude00\ud83d"}`)},
	} {
		if _, err := parseAuthed(c.src, c.body); err != nil {
			t.Errorf("%s: a lone surrogate in a field not read refused the event: %v", c.src, err)
		}
	}
	for _, v := range []string{`"\ud800"`, `"bob\udc01"`, `"\ud83d\u0041"`} {
		for _, c := range userBodies(v) {
			t.Run(string(c.src)+" "+v, func(t *testing.T) {
				_, err := parseAuthed(c.src, c.body)
				wantFields(t, err, c.field)
			})
		}
	}
	_, err := parseSPP(with(sppBase, "session-id", `"s\ud800"`))
	wantFields(t, err, "session-id")
	// U+FFFD sent as it is reads the same, so a receiver refuses it the same; the APIs
	// address a wallet that has one.
	if msg := textProblem("bob\uFFFD", maxUserLen); !strings.Contains(msg, "U+FFFD") {
		t.Errorf("textProblem(bob U+FFFD) = %q", msg)
	}
	if msg := CheckUserID("bob\uFFFD"); msg != "" {
		t.Errorf("CheckUserID(bob U+FFFD) = %q", msg)
	}
}

// An event that earns nothing carries its user only when the id passes the user id rule
// (infoUser), as the admin event view shows it: overlapping XLSX escapes, which a
// receiver refuses in an id it pays, were kept there.
func TestInfoEventsDropUserIDsTheRuleRefuses(t *testing.T) {
	for _, c := range []struct {
		id   string
		want string
	}{
		{"bob", "bob"},
		{"_xD800_", ""},
		{"_x0041_x0042_", ""},
	} {
		for _, b := range []struct {
			src  rewards.Source
			body []byte
		}{
			{rewards.SourceGamePush, with(gpBase, "event", `"PlayerLogin"`, "player", `{"id":"`+c.id+`","projectId":4}`, "result", "-")},
			{rewards.SourceTrackScore, with(tsBase, "type", `"participant.added"`, "data", `{"participant_id":"`+c.id+`"}`)},
		} {
			ev, err := parseAuthed(b.src, b.body)
			if err != nil {
				t.Errorf("%s %q: %v", b.src, c.id, err)
				continue
			}
			if ev.Kind != rewards.KindOther || ev.User != c.want {
				t.Errorf("%s %q: kind %q, user %q, want user %q", b.src, c.id, ev.Kind, ev.User, c.want)
			}
			if CheckNewUserID(c.id) == "" != (c.want != "") {
				t.Errorf("CheckNewUserID(%q) disagrees with the event's user", c.id)
			}
		}
	}
}
