package provider

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

// clientHolder gives every resource the provider's API client; embedding it
// implements resource.ResourceWithConfigure.
type clientHolder struct {
	client *keycloak.Client
}

func (h *clientHolder) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if req.ProviderData == nil { // not configured yet (e.g. validate)
		return
	}
	c, ok := req.ProviderData.(*keycloak.Client)
	if !ok {
		resp.Diagnostics.AddError("Unexpected provider data", fmt.Sprintf("expected *keycloak.Client, got %T", req.ProviderData))
		return
	}
	h.client = c
}

// --- values sent to Keycloak -------------------------------------------------

// boolPtr is nil for null/unknown, meaning "leave Keycloak's value alone".
func boolPtr(v types.Bool) *bool {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	b := v.ValueBool()
	return &b
}

func stringPtr(v types.String) *string {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	s := v.ValueString()
	return &s
}

func int64Ptr(v types.Int64) *int64 {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	i := v.ValueInt64()
	return &i
}

// clearableString sends "" for null so that removing an optional attribute
// from the configuration clears it in Keycloak.
func clearableString(v types.String) *string {
	s := v.ValueString()
	return &s
}

// stringSlice turns a set of strings into a sorted, never-nil slice.
func stringSlice(ctx context.Context, set types.Set, diags *diag.Diagnostics) []string {
	out := []string{}
	if set.IsNull() || set.IsUnknown() {
		return out
	}
	diags.Append(set.ElementsAs(ctx, &out, false)...)
	sort.Strings(out)
	return out
}

// --- values read from Keycloak -----------------------------------------------

// optionalString maps Keycloak's "" to null when the prior value was null,
// so an unset optional attribute does not show a diff.
func optionalString(prior types.String, v string) types.String {
	if v == "" && prior.IsNull() {
		return types.StringNull()
	}
	return types.StringValue(v)
}

func derefBool(p *bool) types.Bool {
	if p == nil {
		return types.BoolValue(false)
	}
	return types.BoolValue(*p)
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func derefInt64(p *int64) types.Int64 {
	if p == nil {
		return types.Int64Value(0)
	}
	return types.Int64Value(*p)
}

// optionalStringSet keeps null when the prior value was null and Keycloak
// holds an empty list.
func optionalStringSet(prior types.Set, values []string) types.Set {
	if len(values) == 0 && prior.IsNull() {
		return types.SetNull(types.StringType)
	}
	elems := make([]attr.Value, len(values))
	for i, v := range values {
		elems[i] = types.StringValue(v)
	}
	return types.SetValueMust(types.StringType, elems)
}

// --- Go duration strings ("5m0s") <-> Keycloak seconds -----------------------

func durationSeconds(v types.String) (*int64, error) {
	if v.IsNull() || v.IsUnknown() {
		return nil, nil
	}
	d, err := time.ParseDuration(v.ValueString())
	if err != nil {
		return nil, err
	}
	secs := int64(d / time.Second)
	return &secs, nil
}

// durationValue formats Keycloak's seconds as a Go duration string, but keeps
// the prior spelling ("5m" rather than "5m0s") when it means the same time.
func durationValue(prior types.String, secs *int64) types.String {
	if secs == nil {
		return types.StringNull()
	}
	d := time.Duration(*secs) * time.Second
	if !prior.IsNull() && !prior.IsUnknown() {
		if p, err := time.ParseDuration(prior.ValueString()); err == nil && p == d {
			return prior
		}
	}
	return types.StringValue(d.String())
}

type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return "must be a Go duration string such as \"5m0s\" or \"1h\""
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d < 0 || d%time.Second != 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%q is not a whole, non-negative number of seconds written as a Go duration such as \"5m0s\" or \"1h\"", req.ConfigValue.ValueString()))
	}
}

type integerStringValidator struct{}

func (integerStringValidator) Description(context.Context) string {
	return "must be a whole number of seconds"
}

func (v integerStringValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (integerStringValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if n, err := strconv.Atoi(req.ConfigValue.ValueString()); err != nil || n < 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid number of seconds",
			fmt.Sprintf("%q is not a whole, non-negative number of seconds", req.ConfigValue.ValueString()))
	}
}

// --- import IDs --------------------------------------------------------------

// splitImportID splits "a/b/c" into exactly n non-empty parts.
func splitImportID(id string, n int, format string) ([]string, error) {
	parts := strings.Split(id, "/")
	if len(parts) != n {
		return nil, errInvalidImport(id, format)
	}
	for _, p := range parts {
		if p == "" {
			return nil, errInvalidImport(id, format)
		}
	}
	return parts, nil
}

func errInvalidImport(id, format string) error {
	return fmt.Errorf("import ID %q must have the form %s", id, format)
}

// notFoundRemoves is the common Read tail: a 404 drops the resource from
// state (it was deleted outside Terraform), any other error is reported.
func notFoundRemoves(ctx context.Context, err error, resp *resource.ReadResponse, what string) {
	if keycloak.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.AddError("Reading "+what+" failed", err.Error())
}
