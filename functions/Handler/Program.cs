using ClinicalFed.Functions;

try
{
    HandlerApp.Build(args).Run();
}
catch (HandlerConfigurationException e)
{
    // The Functions host records the handler's standard error: every problem, then a failed start.
    Console.Error.WriteLine(e.Message);
    return 2;
}

return 0;

/// <summary>The entry point (public for WebApplicationFactory in the tests).</summary>
public partial class Program;
