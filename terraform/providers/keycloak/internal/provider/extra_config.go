package provider

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// extra_config on keycloak_openid_client follows the official provider:
//
//   - its entries are merged into the client's "attributes";
//   - a key that the official provider manages through a dedicated argument
//     is refused (so HCL written for this provider stays valid there);
//   - removing a key sends it as "", which makes Keycloak delete the
//     attribute;
//   - on read only the keys already in state (or in the plan) are taken back,
//     so the attributes Keycloak adds on its own never show up as drift.

// reservedClientAttributes are the attribute keys of the official provider's
// OpenidClientAttributes (each behind a dedicated argument there), which its
// extra_config validation rejects. access.token.lifespan is also managed by
// this provider's access_token_lifespan.
var reservedClientAttributes = map[string]string{
	attrAccessTokenLifespan:                                   "access_token_lifespan",
	"pkce.code.challenge.method":                              "pkce_code_challenge_method",
	"dpop.bound.access.tokens":                                "require_dpop_bound_tokens",
	"exclude.session.state.from.auth.response":                "exclude_session_state_from_auth_response",
	"exclude.issuer.from.auth.response":                       "exclude_issuer_from_auth_response",
	"login_theme":                                             "login_theme",
	"client.offline.session.idle.timeout":                     "client_offline_session_idle_timeout",
	"client.offline.session.max.lifespan":                     "client_offline_session_max_lifespan",
	"client.session.idle.timeout":                             "client_session_idle_timeout",
	"client.session.max.lifespan":                             "client_session_max_lifespan",
	"display.on.consent.screen":                               "display_on_consent_screen",
	"consent.screen.text":                                     "consent_screen_text",
	"use.refresh.tokens":                                      "use_refresh_tokens",
	"client_credentials.use_refresh_token":                    "use_refresh_tokens_client_credentials",
	"backchannel.logout.url":                                  "backchannel_logout_url",
	"frontchannel.logout.url":                                 "frontchannel_logout_url",
	"backchannel.logout.revoke.offline.tokens":                "backchannel_logout_revoke_offline_sessions",
	"backchannel.logout.session.required":                     "backchannel_logout_session_required",
	"oauth2.device.authorization.grant.enabled":               "oauth2_device_authorization_grant_enabled",
	"oauth2.device.code.lifespan":                             "oauth2_device_code_lifespan",
	"oauth2.device.polling.interval":                          "oauth2_device_polling_interval",
	"post.logout.redirect.uris":                               "valid_post_logout_redirect_uris",
	"standard.token.exchange.enabled":                         "standard_token_exchange_enabled",
	"standard.token.exchange.enableRefreshRequestedTokenType": "allow_refresh_token_in_standard_token_exchange",
}

type extraConfigValidator struct{}

func (extraConfigValidator) Description(context.Context) string {
	return "keys must not be attributes that have a dedicated argument"
}

func (v extraConfigValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (extraConfigValidator) ValidateMap(_ context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	keys := make([]string, 0, len(req.ConfigValue.Elements()))
	for k := range req.ConfigValue.Elements() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if arg, ok := reservedClientAttributes[k]; ok {
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(k), "Invalid extra_config key",
				fmt.Sprintf("extra_config key %q is not allowed: it belongs to the argument %q (of this or the official provider)", k, arg))
		}
	}
}

// extraConfigMap returns the known entries of an extra_config value; null
// and unknown give an empty map.
func extraConfigMap(ctx context.Context, v types.Map, diags *diag.Diagnostics) map[string]string {
	out := map[string]string{}
	if v.IsNull() || v.IsUnknown() {
		return out
	}
	diags.Append(v.ElementsAs(ctx, &out, false)...)
	return out
}

// mergeExtraConfig adds planned extra_config entries to attrs, and sends
// every key that was in the prior state but is no longer planned as "", so
// Keycloak removes that attribute (it leaves keys absent from a PUT alone).
func mergeExtraConfig(ctx context.Context, attrs map[string]string, planned, prior types.Map, diags *diag.Diagnostics) {
	want := extraConfigMap(ctx, planned, diags)
	for k := range extraConfigMap(ctx, prior, diags) {
		if _, kept := want[k]; !kept {
			attrs[k] = ""
		}
	}
	for k, v := range want {
		attrs[k] = v
	}
}

// extraConfigValue builds the extra_config to store from Keycloak's
// attributes: only the keys of prior (the plan after create/update, the state
// on refresh) are looked at, so attributes Keycloak sets itself never appear.
// A null prior stays null (import, or extra_config not used), an empty one
// stays empty. A configured "" (or blank) value means "no such attribute" to
// Keycloak, so it is kept while the attribute is absent. A configured key
// that Keycloak no longer has is dropped, which the next plan shows as drift.
func extraConfigValue(ctx context.Context, prior types.Map, attrs map[string]string, diags *diag.Diagnostics) types.Map {
	if prior.IsNull() || prior.IsUnknown() {
		return types.MapNull(types.StringType)
	}
	elems := map[string]attr.Value{}
	for k, want := range extraConfigMap(ctx, prior, diags) {
		got, ok := attrs[k]
		switch {
		case ok && strings.TrimSpace(got) != "":
			elems[k] = types.StringValue(got)
		case strings.TrimSpace(want) == "":
			elems[k] = types.StringValue(want)
		}
	}
	m, d := types.MapValue(types.StringType, elems)
	diags.Append(d...)
	return m
}

// extraConfigPath is where extra_config diagnostics point.
var extraConfigPath = path.Root("extra_config")
