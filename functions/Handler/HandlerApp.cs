using System.Net;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Coordination;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ClinicalFed.Functions;

/// <summary>Builds the handler: settings checked at startup, the store, the coordinator, the routes.</summary>
public static class HandlerApp
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        });
        // ASP.NET Core's request logs carry full URLs, whose query may hold a function key (?code=…): keep them out.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);

        // Only the Functions host, on this machine, calls the handler: it checks function and admin keys before it
        // forwards anything, so the handler listens on loopback only.
        var early = HandlerSettings.Read(name => builder.Configuration[name]);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, early.Port));

        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp => HandlerSettings.Read(name => sp.GetRequiredService<IConfiguration>()[name]));
        builder.Services.AddSingleton<FederationStore>(sp => StoreFactory.Create(sp.GetRequiredService<HandlerSettings>()));
        builder.Services.AddSingleton(sp => new FederationCoordinator(sp.GetRequiredService<FederationStore>(), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton<ClinicalFedFunctions>();

        var app = builder.Build();

        // Every settings problem at once, before the first invocation.
        var settings = app.Services.GetRequiredService<HandlerSettings>();
        if (settings.Problems.Count > 0) throw new HandlerConfigurationException(settings.Problems);
        var store = app.Services.GetRequiredService<FederationStore>();
        app.Logger.LogInformation("ClinicalFed.Functions: {Store}, listening on 127.0.0.1:{Port}; functions {Functions}",
            store is LocalFolderStore local ? $"local folder {local.Root}" : settings.StoreDescription, settings.Port, string.Join(", ", FunctionCatalog.Names));

        InvocationEndpoints.Map(app);
        return app;
    }
}
