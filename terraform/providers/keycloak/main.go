// Command terraform-provider-keycloak is the project's own, minimal Terraform
// provider for Keycloak (see README.md for why it exists).
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"zerotrust/terraform-provider-keycloak/internal/provider"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers such as delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "zerotrust.local/zerotrust/keycloak",
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
