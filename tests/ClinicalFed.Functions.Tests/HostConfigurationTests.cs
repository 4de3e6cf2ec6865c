using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace ClinicalFed.Functions.Tests;

/// <summary>host.json and every function.json: the trigger, bindings, routes and auth levels, and that the handler answers each function.</summary>
public sealed class HostConfigurationTests : HandlerTest
{
    private static JsonObject ReadJson(params string[] parts) => JsonNode.Parse(File.ReadAllText(Path.Combine([Repo.Functions, .. parts])))!.AsObject();

    [Fact]
    public void Host_json_runs_the_handler_binary_as_a_custom_handler_with_forwarding_and_the_extension_bundle()
    {
        var host = ReadJson("host.json");
        Assert.Equal("2.0", host["version"]!.GetValue<string>());
        var handler = host["customHandler"]!.AsObject();
        Assert.Equal(typeof(Program).Assembly.GetName().Name, handler["description"]!["defaultExecutablePath"]!.GetValue<string>());
        Assert.Equal("ClinicalFed.Functions", handler["description"]!["defaultExecutablePath"]!.GetValue<string>());
        Assert.True(handler["enableForwardingHttpRequest"]!.GetValue<bool>());
        Assert.Equal("Microsoft.Azure.Functions.ExtensionBundle", host["extensionBundle"]!["id"]!.GetValue<string>());
        Assert.Equal("[4.*, 5.0.0)", host["extensionBundle"]!["version"]!.GetValue<string>());
        Assert.Equal(FunctionCatalog.RoutePrefix, host["extensions"]!["http"]!["routePrefix"]!.GetValue<string>());
        Assert.True(TimeSpan.TryParse(host["functionTimeout"]!.GetValue<string>(), out var timeout) && timeout <= TimeSpan.FromMinutes(10),
            "functionTimeout must fit the Consumption plan's 10 minutes");
    }

    [Fact]
    public void The_function_folders_are_exactly_the_catalog()
    {
        var folders = Directory.EnumerateDirectories(Repo.Functions)
            .Where(d => File.Exists(Path.Combine(d, "function.json")))
            .Select(Path.GetFileName)
            .Order(StringComparer.Ordinal)
            .ToArray();
        Assert.Equal(FunctionCatalog.Names.Order(StringComparer.Ordinal).ToArray(), folders);
    }

    [Fact]
    public void AggregateRound_is_a_timer_on_the_schedule_app_setting_not_run_on_startup_and_monitored()
    {
        var bindings = ReadJson(FunctionCatalog.AggregateRound, "function.json")["bindings"]!.AsArray();
        var timer = Assert.Single(bindings)!.AsObject();
        Assert.Equal("timerTrigger", timer["type"]!.GetValue<string>());
        Assert.Equal("in", timer["direction"]!.GetValue<string>());
        Assert.Equal("timer", timer["name"]!.GetValue<string>());
        Assert.Equal($"%{FunctionCatalog.ScheduleSetting}%", timer["schedule"]!.GetValue<string>());
        Assert.False(timer["runOnStartup"]!.GetValue<bool>());
        Assert.True(timer["useMonitor"]!.GetValue<bool>());
    }

    public static TheoryData<string> HttpFunctionNames() => new(FunctionCatalog.Http.Select(f => f.Name));

    [Theory]
    [MemberData(nameof(HttpFunctionNames))]
    public void Http_functions_declare_the_catalog_method_route_and_auth_level_with_an_http_output(string name)
    {
        var expected = FunctionCatalog.Http.Single(f => f.Name == name);
        var bindings = ReadJson(name, "function.json")["bindings"]!.AsArray();
        Assert.Equal(2, bindings.Count); // HTTP only: the host forwards the original request (enableForwardingHttpRequest)
        var trigger = bindings.Single(b => b!["type"]!.GetValue<string>() == "httpTrigger")!.AsObject();
        Assert.Equal("in", trigger["direction"]!.GetValue<string>());
        Assert.Equal(FunctionCatalog.RequestBinding, trigger["name"]!.GetValue<string>());
        Assert.Equal(expected.AuthLevel, trigger["authLevel"]!.GetValue<string>());
        Assert.Equal([expected.Method.ToLowerInvariant()], trigger["methods"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(expected.Route, trigger["route"]!.GetValue<string>());
        var output = bindings.Single(b => b!["type"]!.GetValue<string>() == "http")!.AsObject();
        Assert.Equal("out", output["direction"]!.GetValue<string>());
        Assert.Equal(FunctionCatalog.ResponseBinding, output["name"]!.GetValue<string>());
    }

    [Fact]
    public void Auth_levels_are_anonymous_for_tickets_function_for_status_and_admin_for_administration()
    {
        Assert.Equal("anonymous", FunctionCatalog.UploadTicket.AuthLevel);
        Assert.Equal("function", FunctionCatalog.RoundStatus.AuthLevel);
        Assert.All([FunctionCatalog.CreateFederation, FunctionCatalog.RegisterSite, FunctionCatalog.WithdrawSite], f => Assert.Equal("admin", f.AuthLevel));
    }

    [Fact]
    public void Every_function_folder_has_routes_the_handler_maps_in_both_forms()
    {
        var endpoints = Host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Pattern: "/" + e.RoutePattern.RawText!.TrimStart('/'), Methods: e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []))
            .ToList();
        foreach (var name in FunctionCatalog.Names)
        {
            // The invocation request: POST /<function name>.
            Assert.Contains(endpoints, e => e.Pattern == "/" + name && e.Methods.Contains("POST"));
        }

        foreach (var f in FunctionCatalog.Http)
        {
            var route = ReadJson(f.Name, "function.json")["bindings"]![0]!["route"]!.GetValue<string>();
            // The forwarded request: the original path, /api/<route>, with the function's method.
            Assert.Contains(endpoints, e => e.Pattern == $"/{FunctionCatalog.RoutePrefix}/{route}" && e.Methods.Contains(f.Method));
        }
    }

    [Fact]
    public async Task Every_function_answers_its_invocation_request_and_its_forwarded_route()
    {
        var values = new Dictionary<string, string> { ["federation"] = "nosuch", ["site"] = "A" };
        foreach (var f in FunctionCatalog.Http)
        {
            var invoked = await Host.InvokeAsync(f.Name, Payload.Http(f, values, body: "{}"));
            Assert.Equal(HttpStatusCode.OK, invoked.Status);
            Assert.NotNull(invoked.Json!["Outputs"]!["res"]!["statusCode"]);
            Assert.NotNull(invoked.Json!["Logs"]);

            string path = f.Route.Replace("{federation}", "nosuch").Replace("{site}", "A");
            var forwarded = await Host.SendAsync(new HttpMethod(f.Method), $"/{FunctionCatalog.RoutePrefix}/{path}", "{}");
            // A function's own answer (JSON with an error code), not the router's empty 404/405.
            Assert.NotNull(forwarded.Json);
            Assert.True(forwarded.Json!["error"] is not null || forwarded.Status is HttpStatusCode.OK or HttpStatusCode.Created, forwarded.Text);
        }

        var tick = await Host.TickAsync();
        Assert.Equal(HttpStatusCode.OK, tick.Status);

        var root = await Host.SendAsync(HttpMethod.Get, "/");
        Assert.Equal(HttpStatusCode.OK, root.Status);
        Assert.Equal(FunctionCatalog.Names, root.Json!["functions"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    [Fact]
    public async Task A_forwarded_request_with_another_method_is_refused_by_the_router()
    {
        var answer = await Host.SendAsync(HttpMethod.Get, "/api/federations/sepsis/sites/A/tickets");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, answer.Status);
    }
}
