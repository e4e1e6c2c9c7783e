<#
.SYNOPSIS
  Stagedoor workstation agent for Windows: reports user logon, logoff, lock, unlock, idle, RDP
  disconnect/reconnect and a heartbeat to the Stagedoor broker (the same protocol as `stagedoor agent`).

.DESCRIPTION
  Runs as a scheduled task (see docs/power.md, "Windows"), as SYSTEM at startup (recommended: it
  sees every session, reports logoffs, and the token stays unreadable to users) or in the user's
  session at logon. Sessions come from `quser` (WTS); idle time from GetLastInputInfo for the
  script's own session (to the second) and from quser's IDLE TIME for the others (to the minute);
  the lock from LogonUI.exe running in the session. Every -PollSeconds it sends what changed, or a heartbeat when one is due,
  to POST <broker>/api/v1/agent/events with `Authorization: Bearer <agent token>`. When the broker
  is unreachable, events wait in a queue (at most 100) and sending backs off up to a minute; the
  script never stops because of the broker. A release plan's warning is shown with msg.exe; its
  forced logout runs `logoff <session id>`.

  The JSON bodies it sends are built only by New-StagedoorEvent and New-StagedoorReport below; the
  test apps/broker/test/power/windows-agent.test.ts reads those two functions and plays the bodies of
  apps/agent/windows/protocol-fixture.json against a broker.

.EXAMPLE
  powershell -NoProfile -ExecutionPolicy Bypass -File C:\ProgramData\Stagedoor\stagedoor-agent.ps1 -BrokerUrl https://broker.studio.example
#>
param(
  [string]$BrokerUrl = $env:STAGEDOOR_BROKER_URL,
  [string]$Token = $env:STAGEDOOR_AGENT_TOKEN,
  [string]$TokenFile = (Join-Path $env:ProgramData 'Stagedoor\agent-token'),
  [int]$PollSeconds = 10,
  [int]$IdleSeconds = 300,
  [switch]$Once,
  # http:// beyond loopback sends the agent token in clear text: refused unless asked for (or STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER=true).
  [switch]$AllowInsecureBroker
)

$ErrorActionPreference = 'Stop'
$AgentVersion = '0.1.0-windows'
$MaxQueue = 100

if (-not $Token) {
  if (-not (Test-Path $TokenFile)) { throw "no agent token: pass -Token, set STAGEDOOR_AGENT_TOKEN or write it to $TokenFile" }
  $Token = (Get-Content -Raw $TokenFile).Trim()
}
if (-not $BrokerUrl) { throw 'no broker URL: pass -BrokerUrl or set STAGEDOOR_BROKER_URL' }
$BrokerUri = [Uri]$BrokerUrl
if ($BrokerUri.Scheme -eq 'http' -and -not $BrokerUri.IsLoopback -and -not ($AllowInsecureBroker -or $env:STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER -eq 'true')) {
  throw "$BrokerUrl is plain http:// to another host, so the agent token would cross the network in clear text: use https://, or -AllowInsecureBroker (STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER=true) for a network you trust"
}
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12

Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;
public static class StagedoorIdle {
  [StructLayout(LayoutKind.Sequential)]
  struct LASTINPUTINFO { public uint cbSize; public uint dwTime; }
  [DllImport("user32.dll")]
  static extern bool GetLastInputInfo(ref LASTINPUTINFO info);
  /// Milliseconds since the last keyboard or mouse input in this session.
  public static uint IdleMilliseconds() {
    var info = new LASTINPUTINFO();
    info.cbSize = (uint)Marshal.SizeOf(info);
    if (!GetLastInputInfo(ref info)) return 0;
    return unchecked((uint)Environment.TickCount - info.dwTime);
  }
}
'@

function Write-AgentLog([string]$Level, [string]$Message) {
  Write-Output ("{0} {1} {2}" -f (Get-Date).ToUniversalTime().ToString('o'), $Level, $Message)
}

# ---------- the protocol: the only two places a JSON body is built ----------

function New-StagedoorEvent([string]$Type, [string]$User, [string]$Session, $Idle = $null) {
  $e = [ordered]@{
    type = $Type
    at = (Get-Date).ToUniversalTime().ToString('o')
    user = $User
    session = $Session
  }
  if ($null -ne $Idle) { $e.idleSeconds = [int]$Idle }
  return $e
}

function New-StagedoorReport($Events) {
  return [ordered]@{
    agentVersion = $AgentVersion
    os = 'windows'
    hostname = $env:COMPUTERNAME
    events = @($Events)
  }
}

# ---------- what the machine looks like ----------

# quser's IDLE TIME: 'none' or '.' (under a minute), '5' (minutes), '1:05' (h:mm), '2+03:00' (days+h:mm).
function ConvertFrom-QuserIdle([string]$Text) {
  if (-not $Text -or $Text -eq 'none' -or $Text -eq '.') { return 0 }
  $days = 0
  if ($Text -match '^(\d+)\+(.*)$') { $days = [int]$Matches[1]; $Text = $Matches[2] }
  if ($Text -match '^(\d+):(\d+)$') { return (($days * 24 + [int]$Matches[1]) * 60 + [int]$Matches[2]) * 60 }
  if ($Text -match '^\d+$') { return ($days * 1440 + [int]$Text) * 60 }
  return $null
}

# quser: USERNAME SESSIONNAME ID STATE IDLE TIME LOGON TIME ('>' marks the caller's own session).
function Get-UserSessions {
  $lines = @(quser 2>$null | Select-Object -Skip 1)
  $me = [System.Diagnostics.Process]::GetCurrentProcess().SessionId
  foreach ($line in $lines) {
    $text = $line.TrimStart('>', ' ')
    $parts = $text -split '\s{2,}'
    if ($parts.Count -lt 4) { continue }
    # A disconnected session has no SESSIONNAME column: USERNAME ID Disc ...
    if ($parts[1] -match '^\d+$') { $user = $parts[0]; $id = [int]$parts[1]; $state = $parts[2]; $idleText = $parts[3] }
    else { $user = $parts[0]; $id = [int]$parts[2]; $state = $parts[3]; $idleText = $parts[4] }
    $locked = $null -ne (Get-Process -Name LogonUI -ErrorAction SilentlyContinue | Where-Object { $_.SessionId -eq $id })
    # Our own session: to the second (GetLastInputInfo). Others (running as SYSTEM): quser's IDLE TIME, to the minute.
    if ($id -eq $me) { $idle = [math]::Floor([StagedoorIdle]::IdleMilliseconds() / 1000) } else { $idle = ConvertFrom-QuserIdle $idleText }
    [pscustomobject]@{ Id = "$id"; User = $user; Disconnected = ($state -eq 'Disc'); Locked = $locked; IdleSeconds = $idle; Own = ($id -eq $me) }
  }
}

# The same rules as the Linux agent (apps/agent/src/observe.ts, diff): changes only.
$script:Reported = @{ User = $null; Session = $null; Idle = $false; Locked = $false; Disconnected = $false }

function Get-Changes($Sessions) {
  # The script's own session first, then the most recently used one (as on Linux).
  $s = @($Sessions | Sort-Object @{ Expression = { if ($_.Own) { 0 } else { 1 } } }, @{ Expression = { if ($null -eq $_.IdleSeconds) { [int]::MaxValue } else { $_.IdleSeconds } } } | Select-Object -First 1)
  $r = $script:Reported
  $out = @()
  if ($s.Count -eq 0 -or $null -eq $s[0]) {
    if ($r.User) { $out += New-StagedoorEvent 'logout' $r.User $r.Session }
    $script:Reported = @{ User = $null; Session = $null; Idle = $false; Locked = $false; Disconnected = $false }
    return $out
  }
  $s = $s[0]
  $idle = ($null -ne $s.IdleSeconds) -and ($s.IdleSeconds -ge $IdleSeconds)
  if ($r.User -ne $s.User) {
    if ($r.User) { $out += New-StagedoorEvent 'logout' $r.User $r.Session }
    $out += New-StagedoorEvent 'login' $s.User $s.Id
    if ($s.Locked) { $out += New-StagedoorEvent 'lock' $s.User $s.Id }
    if ($s.Disconnected) { $out += New-StagedoorEvent 'disconnect' $s.User $s.Id }
    if ($idle) { $out += New-StagedoorEvent 'idle' $s.User $s.Id $s.IdleSeconds }
  } else {
    if ($s.Disconnected -ne $r.Disconnected) { $out += New-StagedoorEvent ($(if ($s.Disconnected) { 'disconnect' } else { 'reconnect' })) $s.User $s.Id }
    if ($s.Locked -ne $r.Locked) { $out += New-StagedoorEvent ($(if ($s.Locked) { 'lock' } else { 'unlock' })) $s.User $s.Id }
    if ($idle -ne $r.Idle) {
      if ($idle) { $out += New-StagedoorEvent 'idle' $s.User $s.Id $s.IdleSeconds }
      else { $out += New-StagedoorEvent 'active' $s.User $s.Id }
    }
  }
  $script:Reported = @{ User = $s.User; Session = $s.Id; Idle = $idle; Locked = $s.Locked; Disconnected = $s.Disconnected }
  return $out
}

# ---------- talking to the broker ----------

$script:Queue = New-Object System.Collections.ArrayList
$script:Failures = 0
$script:NextTry = [datetime]::MinValue
$script:LastSent = [datetime]::MinValue
$script:HeartbeatSeconds = 60
$script:Handled = @{}

function Send-Report {
  $batch = @($script:Queue | Select-Object -First $MaxQueue)
  if ($batch.Count -eq 0) { $batch = @(New-StagedoorEvent 'heartbeat' $script:Reported.User $script:Reported.Session) }
  $body = New-StagedoorReport $batch | ConvertTo-Json -Depth 5 -Compress
  try {
    $answer = Invoke-RestMethod -Method Post -Uri ($BrokerUrl.TrimEnd('/') + '/api/v1/agent/events') -Headers @{ Authorization = "Bearer $Token" } -ContentType 'application/json' -Body $body -TimeoutSec 15
    $script:Queue.RemoveRange(0, [math]::Min($script:Queue.Count, $MaxQueue))
    $script:LastSent = Get-Date
    $script:HeartbeatSeconds = [math]::Max(5, [int]$answer.heartbeatSeconds)
    $script:Failures = 0
    $script:NextTry = [datetime]::MinValue
    if ($answer.notice) { Invoke-Notice $answer.notice }
  } catch {
    $status = $null
    if ($_.Exception.Response) { $status = [int]$_.Exception.Response.StatusCode }
    if ($status -eq 400) {
      Write-AgentLog 'error' "the broker refused a report; dropping it: $($_.Exception.Message)"
      $script:Queue.RemoveRange(0, [math]::Min($script:Queue.Count, $MaxQueue))
      return
    }
    $script:Failures++
    $delay = [math]::Min(60, [math]::Pow(2, [math]::Min($script:Failures - 1, 6)))
    $script:NextTry = (Get-Date).AddSeconds($delay)
    Write-AgentLog 'warn' "could not report to the broker (retry in $delay s, $($script:Queue.Count) queued): $($_.Exception.Message)"
  }
}

function Invoke-Notice($Notice) {
  if ($script:Handled.ContainsKey($Notice.id)) { return }
  $script:Handled[$Notice.id] = $true
  if ($Notice.kind -eq 'warn') {
    msg.exe * /TIME:300 $Notice.message 2>$null
  } elseif ($Notice.kind -eq 'logout' -and $script:Reported.Session) {
    msg.exe * /TIME:30 $Notice.message 2>$null
    logoff.exe $script:Reported.Session
  }
  Write-AgentLog 'info' "notice $($Notice.kind) $($Notice.id)"
}

Write-AgentLog 'info' "stagedoor agent $AgentVersion reporting to $BrokerUrl every $PollSeconds s (idle after $IdleSeconds s)"
while ($true) {
  try {
    foreach ($e in (Get-Changes (Get-UserSessions))) {
      [void]$script:Queue.Add($e)
      Write-AgentLog 'info' "session $($e.type) $($e.user)"
    }
    while ($script:Queue.Count -gt $MaxQueue) { $script:Queue.RemoveAt(0) }
  } catch {
    Write-AgentLog 'warn' "could not read the sessions: $($_.Exception.Message)"
  }
  $heartbeatDue = ((Get-Date) - $script:LastSent).TotalSeconds -ge $script:HeartbeatSeconds
  if (($script:Queue.Count -gt 0 -or $heartbeatDue) -and (Get-Date) -ge $script:NextTry) { Send-Report }
  if ($Once) { break }
  Start-Sleep -Seconds $PollSeconds
}
