package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The library: kin-openapi, already in go.mod. Its v0.153.0 loads and validates
// OpenAPI 3.1 documents, and for a 3.1 document its openapi3filter validates bodies and
// headers with a JSON Schema 2020-12 validator (santhosh-tekuri/jsonschema/v6): type
// arrays such as [string, "null"], const, format date-time, and $ref with sibling
// keywords mean what 3.1 says. That covers every construct app/openapi.yaml uses, so
// pb33f/libopenapi-validator would only add a second dependency tree. Three defaults are
// tightened here rather than loosened in the document: an undocumented status is refused
// (IncludeResponseStatus); an answer to a route the document does not have (the tests'
// 404 and 405 cases) must still be a problem, which kin-openapi cannot route to check;
// and an object member the document does not list is refused (closeObjects), though
// JSON Schema allows it. TestContractCatchesDrift pins each behaviour the tests rely
// on, so an upgrade that changes one fails there instead of letting drift through.

// contract is the served OpenAPI document, ready to validate answers with.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
}

var (
	contractOnce   sync.Once
	contractLoaded *contract
	contractErr    error
)

// loadContract reads GET /openapi.json from h once per test binary: the document the
// answers are validated against is the one the binary serves.
func loadContract(h http.Handler) (*contract, error) {
	contractOnce.Do(func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
		if rec.Code != http.StatusOK {
			contractErr = fmt.Errorf("GET /openapi.json: %d %s", rec.Code, rec.Body)
			return
		}
		contractLoaded, contractErr = newContract(rec.Body.Bytes())
	})
	return contractLoaded, contractErr
}

func newContract(doc []byte) (*contract, error) {
	loader := openapi3.NewLoader()
	d, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := d.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the document is not valid OpenAPI %s: %w", d.OpenAPI, err)
	}
	closeObjects(d)
	// gorillamux matches the escaped path, as the app's gin engine does, so a user id
	// holding %2F stays one segment here too.
	r, err := gorillamux.NewRouter(d)
	if err != nil {
		return nil, err
	}
	p := d.Components.Schemas["Problem"]
	if p == nil || p.Value == nil {
		return nil, errors.New("components.schemas.Problem is missing")
	}
	return &contract{doc: d, router: r, problem: p.Value}, nil
}

// closeObjects makes every object schema that lists its properties and says nothing of
// others refuse unlisted members. The document leaves them open, as a client must be to
// members added later; the tests hold the server to exactly the members documented.
func closeObjects(d *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var visit func(*openapi3.SchemaRef)
	visit = func(r *openapi3.SchemaRef) {
		if r == nil || r.Value == nil || seen[r.Value] {
			return
		}
		s := r.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			visit(p)
		}
		visit(s.Items)
		visit(s.AdditionalProperties.Schema)
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, x := range list {
				visit(x)
			}
		}
	}
	for _, s := range d.Components.Schemas {
		visit(s)
	}
	visitContent := func(c openapi3.Content) {
		for _, mt := range c {
			if mt != nil {
				visit(mt.Schema)
			}
		}
	}
	for _, r := range d.Components.Responses {
		if r.Value != nil {
			visitContent(r.Value.Content)
		}
	}
	for _, item := range d.Paths.Map() {
		for _, op := range item.Operations() {
			for _, r := range op.Responses.Map() {
				if r.Value != nil {
					visitContent(r.Value.Content)
				}
			}
		}
	}
}

// checkContract fails the test when the answer to req is not one the document allows.
// It uses Errorf, not Fatalf: tests call env.do from several goroutines at once.
func (e *env) checkContract(req *http.Request, rec *httptest.ResponseRecorder) {
	e.t.Helper()
	c, err := loadContract(e.h)
	if err != nil {
		e.t.Errorf("app/openapi.yaml: %v", err)
		return
	}
	if err := c.check(req, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		e.t.Errorf("%s %s answered %d, which app/openapi.yaml does not allow: %v\nbody: %.2000s",
			req.Method, req.URL.RequestURI(), rec.Code, err, rec.Body.Bytes())
	}
}

// check validates one answer: status, documented headers, Content-Type and body. The
// answer to a request for a route the document does not have (the tests' 404 and 405
// cases) must still be a problem.
func (c *contract) check(req *http.Request, status int, h http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("no documented operation, yet the answer is not a 404 or 405")
		}
		if h.Get("X-Request-Id") == "" {
			return errors.New(`response header "X-Request-Id" missing`)
		}
		return c.checkProblem(status, h, body)
	}
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 h,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	// The reason names the member and the rule it breaks; the default message appends
	// the whole schema, which buries it.
	in.Options.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string { return err.Reason })
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if status >= 400 {
		// The document says every error is a problem; this checks what the schema cannot
		// say, that its status is the answer's.
		return c.checkProblem(status, h, body)
	}
	return nil
}

// checkProblem: an application/problem+json body of the Problem schema whose status is
// the HTTP status.
func (c *contract) checkProblem(status int, h http.Header, body []byte) error {
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "application/problem+json" {
		return fmt.Errorf("Content-Type %q, want application/problem+json", h.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("problem body is not JSON: %w", err)
	}
	if err := c.problem.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("not a Problem: %w", err)
	}
	if got := v.(map[string]any)["status"]; fmt.Sprint(got) != fmt.Sprint(status) {
		return fmt.Errorf("problem status %v in a %d answer", got, status)
	}
	return nil
}
