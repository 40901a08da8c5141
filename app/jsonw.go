package app

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// The publisher's most polled answers (a balance, a page of transactions, a page of the
// balance feed) and the answer to every accepted postback are written by hand rather
// than by encoding/json: its reflection over a page of 100 structs cost a transactions
// page about a sixth of tally's CPU, more than reading the page from the database, and
// json.Marshal of the two-field postback answer was 3.5 % of tally's CPU under SPP
// ingest. The bytes are the ones json.Marshal writes for the same structs (balanceJSON,
// txnJSON, listPage, feedPage, hookAnswer), which TestHandWrittenJSON holds them to,
// field order, escaping and all; every other answer still goes through encoding/json.

// jsonBufs keeps answer buffers between requests; a buffer that grew past maxKeptJSON
// (about a page of 1,000 feed rows) is left to the collector.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxKeptJSON = 256 << 10

// answerJSON answers status with the JSON write appends to a buffer, as c.JSON would
// answer with json.Marshal's.
func answerJSON(c *gin.Context, status int, write func([]byte) []byte) {
	bp := jsonBufs.Get().(*[]byte)
	b := write((*bp)[:0])
	c.Data(status, "application/json; charset=utf-8", b)
	if cap(b) <= maxKeptJSON {
		*bp = b[:0]
		jsonBufs.Put(bp)
	}
}

func (j *balanceJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"property":`...)
	b = appendJSONString(b, j.Property)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, j.User)
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, j.Currency)
	b = append(b, `,"scale":`...)
	b = strconv.AppendInt(b, int64(j.Scale), 10)
	b = append(b, `,"available":`...)
	b = appendJSONString(b, j.Available)
	b = append(b, `,"pending":`...)
	b = appendJSONString(b, j.Pending)
	b = append(b, `,"redeemed":`...)
	b = appendJSONString(b, j.Redeemed)
	b = append(b, `,"lifetime_earned":`...)
	b = appendJSONString(b, j.LifetimeEarned)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTimePtr(b, j.UpdatedAt)
	b = append(b, `,"next_available_at":`...)
	b = appendJSONTimePtr(b, j.NextAvailableAt)
	return append(b, '}')
}

func (j *txnJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, j.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, j.Kind)
	b = append(b, `,"rule":`...)
	b = appendJSONString(b, j.Rule)
	if j.RuleVersion != "" { // omitempty
		b = append(b, `,"rule_version":`...)
		b = appendJSONString(b, j.RuleVersion)
	}
	b = append(b, `,"amount":`...)
	b = appendJSONString(b, j.Amount)
	b = append(b, `,"bucket":`...)
	b = appendJSONString(b, j.Bucket)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, j.CreatedAt)
	b = append(b, `,"ref":`...)
	b = appendJSONString(b, j.Ref)
	b = append(b, `,"available_at":`...)
	b = appendJSONTimePtr(b, j.AvailableAt)
	return append(b, '}')
}

// appendJSON writes a page as json.Marshal writes listPage[J], each item with item.
func (p *listPage[J]) appendJSON(b []byte, item func(*J, []byte) []byte) []byte {
	b = appendJSONData(b, p.Data, item)
	if p.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *p.NextCursor)
	}
	return append(b, '}')
}

func (p *feedPage) appendJSON(b []byte) []byte {
	b = appendJSONData(b, p.Data, (*balanceJSON).appendJSON)
	b = appendJSONString(b, p.NextCursor)
	return append(b, '}')
}

// appendJSONData writes a page's opening up to its cursor's value: `{"data":[…],
// "next_cursor":`, each item with item.
func appendJSONData[J any](b []byte, data []J, item func(*J, []byte) []byte) []byte {
	b = append(b, `{"data":[`...)
	for i := range data {
		if i > 0 {
			b = append(b, ',')
		}
		b = item(&data[i], b)
	}
	return append(b, `],"next_cursor":`...)
}

// appendJSONTime writes t as time.Time's MarshalJSON does (RFC 3339 with as many
// fractional digits as needed). Times here come from the database and the clock, well
// inside the years 0–9999 MarshalJSON refuses to leave.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendJSONTimePtr(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendJSONTime(b, *t)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string the way json.Marshal does: `"` and `\`
// escaped, \b \f \n \r \t short, other control characters and the HTML-sensitive <, >
// and & as \u00XX, U+2028 and U+2029 (line and paragraph separators, which break
// JavaScript) as \u2028 and \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte { return appendJSONText(b, s, true) }

// appendJSONText is appendJSONString, with <, > and & left as they are unless html (as
// an encoding/json Encoder with SetEscapeHTML(false) writes them).
func appendJSONText(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
