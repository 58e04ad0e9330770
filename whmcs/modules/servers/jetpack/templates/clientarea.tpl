{* Jetpack by Automattic: shown on the service's overview in the client area. *}
<div class="jetpack-provisioning">
    <h3>Jetpack</h3>
{if $jetpackActivationUrl}
    <p>{$jetpackMessage|escape:'html'}</p>
    <p>
        <a href="{$jetpackActivationUrl|escape:'html'}" class="btn btn-primary" target="_blank" rel="noopener noreferrer">Activate Jetpack</a>
    </p>
{else}
    <p>{$jetpackMessage|escape:'html'}</p>
{/if}
</div>
