using System.CommandLine;
using ClinicalFed.Cli.Serving;

namespace ClinicalFed.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var model = CliSupport.Required("--model", "A round folder of a federation store (…/federations/<federation>/rounds/<NNNNN>, from simulate or the serverless aggregator).");
        var urls = new Option<string>("--urls") { Description = "Where to listen, e.g. http://127.0.0.1:8080.", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var site = new Option<string?>("--site") { Description = "Serve this site's personalized model when the round has one (else the global model)." };
        var personalized = new Option<string?>("--personalized") { Description = "A site's own personalized model file (site run leaves it as <work>/personalized-model.cfm: trees, or secure-aggregation rounds), served with the round's statistics; no reload." };
        var devNoAuth = new Option<bool>("--dev-no-auth") { Description = "Development only: accept requests without a bearer token." };
        var issuer = new Option<string?>("--jwt-issuer") { Description = "Bearer tokens (JWT) must come from this issuer (iss), e.g. your SMART backend-services authorization server." };
        var audience = new Option<string?>("--jwt-audience") { Description = "Bearer tokens must name this audience (aud): this server's base URL." };
        var key = new Option<string?>("--jwt-key") { Description = "PEM file of the issuer's public signing key (RSA or EC). Tokens also need the scope system/RiskAssessment.read." };
        var reload = new Option<int>("--reload-seconds") { Description = "Seconds between checks for a newer round's model in the store (0: never); the swap drops no request.", DefaultValueFactory = _ => 30 };
        var fhirServer = new Option<string?>("--fhir-server") { Description = "The EHR's FHIR R4 base URL: Patient/{id}/$sepsis-risk (and Parameters with a patient reference) fetch the patient's Encounters, Observations and Conditions from it." };
        var fhirToken = new Option<string?>("--fhir-server-token-file") { Description = "File holding a bearer token for --fhir-server." };
        var fhirTimeout = new Option<int>("--fhir-server-timeout") { Description = "Seconds to wait for --fhir-server per request.", DefaultValueFactory = _ => 10 };
        var cmd = new Command("serve", "Serve a round's model to clinicians: FHIR R4 ($sepsis-risk / $readmission-risk → RiskAssessment) and CDS Hooks (patient-view).")
            { model, urls, site, personalized, devNoAuth, issuer, audience, key, reload, fhirServer, fhirToken, fhirTimeout };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var app = ServeApp.Build(new ServeOptions { ModelDirectory = pr.GetValue(model)!, Urls = pr.GetValue(urls)!, Site = pr.GetValue(site), PersonalizedModelFile = pr.GetValue(personalized), DevNoAuth = pr.GetValue(devNoAuth),
                JwtIssuer = pr.GetValue(issuer), JwtAudience = pr.GetValue(audience), JwtKeyFile = pr.GetValue(key), ReloadSeconds = pr.GetValue(reload),
                FhirServer = pr.GetValue(fhirServer), FhirServerTokenFile = pr.GetValue(fhirToken), FhirServerTimeoutSeconds = pr.GetValue(fhirTimeout) });
            Console.Error.WriteLine($"clinicalfed serve: listening on {pr.GetValue(urls)} (FHIR at /fhir, CDS Hooks at /cds-services); Ctrl+C stops");
            app.Run();
            return 0;
        }));
        return cmd;
    }
}
