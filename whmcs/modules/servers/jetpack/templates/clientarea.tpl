{* Jetpack by Automattic: shown on the service's overview in the client area. *}
<div class="jetpack-provisioning">
    <h3>Jetpack</h3>
{if $jetpackLicenceKey}
    <p>{$jetpackMessage|escape:'html'}</p>
    <div class="input-group jetpack-licence">
        <input type="text" class="form-control" id="jetpack-licence-key" readonly="readonly" value="{$jetpackLicenceKey|escape:'html'}" aria-label="Jetpack licence key" />
        <span class="input-group-btn">
            <button type="button" class="btn btn-default" id="jetpack-licence-copy" onclick="var k = document.getElementById('jetpack-licence-key'); k.select(); if (navigator.clipboard) { navigator.clipboard.writeText(k.value); } else { document.execCommand('copy'); } this.textContent = 'Copied';">Copy</button>
        </span>
    </div>
{if $jetpackLicenceUrl}
    <p>
        <a href="{$jetpackLicenceUrl|escape:'html'}" class="btn btn-primary" id="jetpack-licence-page" target="_blank" rel="noopener noreferrer">Open your site's Jetpack licence page</a>
    </p>
{else}
    <p>In your site's WordPress admin: <code>{$jetpackLicencePath|escape:'html'}</code></p>
{/if}
{elseif $jetpackActivationUrl}
    <p>{$jetpackMessage|escape:'html'}</p>
    <p>
        <a href="{$jetpackActivationUrl|escape:'html'}" class="btn btn-primary" target="_blank" rel="noopener noreferrer">Activate Jetpack</a>
    </p>
{else}
    <p>{$jetpackMessage|escape:'html'}</p>
{/if}
</div>
